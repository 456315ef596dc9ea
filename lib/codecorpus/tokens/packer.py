"""The packer: files' token ids -> rows of exactly `seq_length` tokens, and the statistics of it.

Pure numpy and Arrow (no Spark, no tokenizer library), so it is tested and reasoned about without
a cluster; the tokens stage runs it inside its executors. `<|endoftext|>` follows every file, as in
the book's ConstantLengthDataset; a group's last short run is dropped (counted) or, in pad mode,
padded with the end-of-text id into one more row whose `attention_mask` marks the padding.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Histogram of file lengths in tokens: counts[i] = files with EDGES[i] <= tokens < EDGES[i+1];
# the last bin is open-ended.
HIST_EDGES = [0] + [2 ** k for k in range(4, 18)]

# The figures GroupPacker.finish reports that add up across groups and splits.
STAT_KEYS = ("files", "files_null", "files_tail", "files_packed", "sequences", "text_tokens", "stream_tokens",
             "tokens", "padding_tokens", "tokens_dropped", "chars")


def ids_dtype(vocab_size: int) -> str:
    """uint16 holds ids 0..65535; larger vocabularies need int32."""
    return "uint16" if vocab_size <= 2 ** 16 else "int32"


def file_length_histogram(lengths: np.ndarray) -> np.ndarray:
    bins = np.searchsorted(np.asarray(HIST_EDGES), lengths, side="right") - 1
    return np.bincount(bins, minlength=len(HIST_EDGES)).astype(np.int64)


def encode_contents(encoder, content: pa.Array) -> tuple[list[np.ndarray | None], np.ndarray]:
    """Token ids of each file (None for a file without content) and its length in characters.
    `encoder` is a `tokenizer.encoder` engine; one batch call encodes all present files."""
    texts = content.to_pylist()
    encoded = iter(encoder.encode([t for t in texts if t is not None]))
    ids = [next(encoded) if t is not None else None for t in texts]
    chars = pc.fill_null(pc.utf8_length(content), 0).to_numpy(zero_copy_only=False)
    return ids, chars


class GroupPacker:
    """Packs one group's files, in order, into rows of exactly `seq_length` tokens."""

    def __init__(self, seq_length: int, eos_id: int, pad: bool):
        self.seq_length = seq_length
        self.eos_id = eos_id
        self.pad = pad
        self.pending = np.empty(0, np.int64)  # stream tokens not yet in a row (< seq_length)
        self.pending_starts = np.empty(0, np.int64)  # stream offsets of files starting in pending
        self.stream_tokens = 0
        self.rows = 0
        self.files = 0
        self.null_files = 0
        self.text_tokens = 0
        self.chars = 0
        self.hist = np.zeros(len(HIST_EDGES), np.int64)

    def add(self, ids: list[np.ndarray | None], chars: int) -> np.ndarray:
        """Append files (None: a file without content); returns the rows completed, (k, seq_length)."""
        present = [a for a in ids if a is not None]
        self.files += len(ids)
        self.null_files += len(ids) - len(present)
        self.chars += chars
        if present:
            self._append(present)
        k = len(self.pending) // self.seq_length
        full = self.pending[:k * self.seq_length].reshape(k, self.seq_length)
        self.pending = self.pending[k * self.seq_length:].copy()
        self.rows += k
        # A file whose first token went into a row is packed; only those starting later can be tail.
        self.pending_starts = self.pending_starts[self.pending_starts >= self.rows * self.seq_length]
        return full

    def _append(self, present: list[np.ndarray]) -> None:
        """Adds the files, each followed by its end-of-text token, to the pending stream."""
        lengths = np.fromiter(map(len, present), np.int64, len(present))
        ends = np.cumsum(lengths + 1)
        stream = np.empty(int(ends[-1]), np.int64)
        is_eos = np.zeros(len(stream), bool)
        is_eos[ends - 1] = True
        stream[is_eos] = self.eos_id
        if lengths.sum():
            stream[~is_eos] = np.concatenate(present)
        self.pending_starts = np.concatenate([self.pending_starts, self.stream_tokens + ends - lengths - 1])
        self.pending = np.concatenate([self.pending, stream])
        self.stream_tokens += len(stream)
        self.text_tokens += int(lengths.sum())
        self.hist += file_length_histogram(lengths)

    def finish(self) -> tuple[tuple[np.ndarray | None, int], dict]:
        """((the padded last row, its real tokens) in pad mode when there is a remainder, else
        (None, 0)), and the group's statistics."""
        last = None
        tail_tokens = len(self.pending)
        if self.pad and tail_tokens:
            last = np.full(self.seq_length, self.eos_id, np.int64)
            last[:tail_tokens] = self.pending
            self.rows += 1
        dropped_tokens = 0 if self.pad else tail_tokens
        tail_files = 0 if self.pad else len(self.pending_starts)
        stats = {
            "files": self.files, "files_null": self.null_files, "files_tail": tail_files,
            "files_packed": self.files - self.null_files - tail_files,
            "sequences": self.rows, "text_tokens": self.text_tokens, "stream_tokens": self.stream_tokens,
            "tokens": self.stream_tokens - dropped_tokens,
            "padding_tokens": (self.seq_length - tail_tokens) if last is not None else 0,
            "tokens_dropped": dropped_tokens, "chars": self.chars, "hist": self.hist.tolist(),
        }
        return (last, tail_tokens) if last is not None else (None, 0), stats


def sum_stats(stats: list[dict]) -> dict:
    """Adds up GroupPacker.finish statistics (counts and histogram)."""
    total: dict[str, Any] = {k: sum(s[k] for s in stats) for k in STAT_KEYS}
    total["hist"] = [sum(col) for col in zip(*(s["hist"] for s in stats))] if stats else [0] * len(HIST_EDGES)
    return total


# ----------------------------------------------------------------------------- output format

def output_schema(dtype: str, with_mask: bool) -> pa.Schema:
    """`input_ids` as list<uint16> or list<int32>, plus `attention_mask` in pad mode."""
    fields = [pa.field("input_ids", pa.list_(pa.from_numpy_dtype(np.dtype(dtype))))]
    if with_mask:
        fields.append(pa.field("attention_mask", pa.list_(pa.uint8())))
    return pa.schema(fields)


def sequences_table(rows: np.ndarray, n_real: list[int] | np.ndarray, schema: pa.Schema) -> pa.Table:
    """(n, seq_length) token ids -> the output columns; `n_real` real tokens per row (the rest is padding)."""
    n, width = rows.shape
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * width)
    value_type = schema.field("input_ids").type.value_type
    cols = [pa.ListArray.from_arrays(offsets, pa.array(rows.reshape(-1).astype(value_type.to_pandas_dtype())))]
    if "attention_mask" in schema.names:
        mask = (np.arange(width)[None, :] < np.asarray(n_real)[:, None]).astype(np.uint8)
        cols.append(pa.ListArray.from_arrays(offsets, pa.array(mask.reshape(-1))))
    return pa.Table.from_arrays(cols, schema=schema)


def shard_plan(sequences_per_group: dict[int, int], rows_per_file: int) -> list[list[tuple[int, int, int]]]:
    """Rows in group order, cut into shards of rows_per_file: per shard, its (group, start, stop) pieces."""
    shards: list[list[tuple[int, int, int]]] = []
    room = 0
    for grp in sorted(sequences_per_group):
        start, n = 0, sequences_per_group[grp]
        while start < n:
            if room == 0:
                shards.append([])
                room = rows_per_file
            take = min(room, n - start)
            shards[-1].append((grp, start, start + take))
            start += take
            room -= take
    return shards
