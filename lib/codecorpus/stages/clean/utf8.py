"""An Arrow string array as numpy: its UTF-8 bytes, row offsets and the positions of its
non-ASCII bytes, so per-file measurements run over a whole batch at once.

Characters are counted as Python counts them (code points): a byte starts a character unless it
is a continuation byte (0b10xxxxxx). Arrow strings are valid UTF-8, so a multi-byte sequence
found at a lead byte is always one whole character. Character classes of non-ASCII characters
are Python's own answers (`str.isalnum`, `str.isspace`), asked once per distinct code point of a
batch.
"""
from __future__ import annotations

from functools import cached_property
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class Utf8Batch:
    """The bytes of rows [0, n) of a string array; `offsets[i]:offsets[i + 1]` is row i."""

    def __init__(self, arr: pa.Array):
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            arr = arr.cast(pa.large_string())
        width = 8 if pa.types.is_large_string(arr.type) else 4
        _, offsets_buf, data_buf = arr.buffers()
        self.n = len(arr)
        offsets = np.frombuffer(offsets_buf, np.int64 if width == 8 else np.int32, count=self.n + 1,
                                offset=arr.offset * width).astype(np.int64)
        data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.empty(0, np.uint8)
        self.data = data[offsets[0]:offsets[-1]]
        self.offsets = offsets - offsets[0]
        # Null rows (content is never null in ingest rows; the UDF contract allows it).
        self.valid = None if arr.null_count == 0 else pc.is_valid(arr).to_numpy(zero_copy_only=False)

    @property
    def starts(self) -> np.ndarray:
        return self.offsets[:-1]

    @property
    def ends(self) -> np.ndarray:
        return self.offsets[1:]

    # ----------------------------------------------------------------- positions and rows

    def count_per_row(self, positions: np.ndarray) -> np.ndarray:
        """How many of `positions` (sorted byte positions) lie in each row: one binary search
        per row boundary, not per position."""
        return np.diff(np.searchsorted(positions, self.offsets)).astype(np.int64)

    def rows_of(self, positions: np.ndarray) -> np.ndarray:
        """The row of each of `positions` (sorted byte positions)."""
        return np.repeat(np.arange(self.n), self.count_per_row(positions))

    def count_true_per_row(self, mask: np.ndarray) -> np.ndarray:
        """Per-row counts of a per-byte boolean mask, for dense masks: the mask packed into bits,
        a running count of set bits per packed byte, and the bits of the partial bytes at row
        boundaries (about four times faster than a reduceat over the bytes)."""
        bits = np.packbits(mask)
        if not bits.size:
            return np.zeros(self.n, np.int64)
        running = np.concatenate([[0], np.cumsum(np.bitwise_count(bits), dtype=np.int64)])
        whole, part = self.offsets // 8, (self.offsets % 8).astype(np.uint8)
        # packbits puts a byte's first element in its highest bit
        partial = np.bitwise_count(bits[np.minimum(whole, len(bits) - 1)] >> (8 - part))
        before = running[whole] + np.where(part > 0, partial, 0)  # set bits before each offset
        return np.diff(before)

    # ------------------------------------------------------------------- non-ASCII bytes

    @cached_property
    def non_ascii(self) -> np.ndarray:
        """Positions of bytes >= 0x80 (most files have none)."""
        return np.flatnonzero(self.data >= 0x80)

    @cached_property
    def continuation(self) -> np.ndarray:
        """Positions of continuation bytes: bytes that do not start a character."""
        return self.non_ascii[(self.data[self.non_ascii] & 0xC0) == 0x80]

    @cached_property
    def leads(self) -> np.ndarray:
        """Positions of the first bytes of multi-byte characters."""
        return self.non_ascii[self.data[self.non_ascii] >= 0xC0]

    def chars_between(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Characters in the byte ranges [starts, ends): bytes minus continuation bytes."""
        count = ends - starts
        if self.continuation.size:
            count = count - (np.searchsorted(self.continuation, ends) - np.searchsorted(self.continuation, starts))
        return count

    def byte_at(self, positions: np.ndarray, ahead: int) -> np.ndarray:
        """The byte `ahead` places after each position (clipped to the data)."""
        return self.data[np.clip(positions + ahead, 0, max(len(self.data) - 1, 0))]

    def sequence_at(self, positions: np.ndarray, seq: bytes) -> np.ndarray:
        """Whether the bytes at each position start with `seq`."""
        found = positions + len(seq) <= len(self.data)
        for k, value in enumerate(seq):
            found &= self.byte_at(positions, k) == value
        return found

    @cached_property
    def code_points(self) -> tuple[np.ndarray, np.ndarray]:
        """(the distinct code points of the multi-byte characters, sorted; each character's
        index among them, in `leads` order)."""
        lead = self.leads
        first = self.data[lead].astype(np.int64)
        size = np.where(first < 0xE0, 2, np.where(first < 0xF0, 3, 4))
        cp = first & np.where(size == 2, 0x1F, np.where(size == 3, 0x0F, 0x07))
        for k in (1, 2, 3):
            cp = np.where(size > k, (cp << 6) | (self.byte_at(lead, k).astype(np.int64) & 0x3F), cp)
        return np.unique(cp, return_inverse=True)

    def where(self, test: Callable[[str], bool]) -> tuple[np.ndarray, list[str]]:
        """(positions of the multi-byte characters for which `test`, a str method, is true;
        those distinct characters)."""
        distinct, index = self.code_points
        chars = [chr(c) for c in distinct.tolist()]
        answer = np.fromiter(map(test, chars), bool, len(chars))
        return self.leads[answer[index]], [ch for ch, yes in zip(chars, answer.tolist()) if yes]


def with_nulls(values: pa.Array, valid: np.ndarray | None) -> pa.Array:
    """`values` with the rows where `valid` is false made null (`Utf8Batch.valid`; None: no nulls)."""
    if valid is None:
        return values
    return pc.if_else(pa.array(valid), values, pa.nulls(len(values), values.type))
