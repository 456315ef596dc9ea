"""Tokens and shingles of source files, as 64-bit hashes, computed over whole Arrow string arrays.

Tokens are the runs of `[A-Za-z_0-9]` (the text split on `[^A-Za-z_0-9]+`, as CodeParrot did).
Everything here works on the bytes of a batch of files at once with numpy, never on one file
or one token in Python: token bounds come from the transitions of a word-byte mask, a token's
value from its bytes read eight at a time through an unaligned 64-bit view, and an n-gram's hash
is a polynomial fold of its tokens' values, finalized with splitmix64's mixer.

A token of at most 8 bytes is its own bytes, zero-padded (tokens hold no NUL byte, so distinct
short tokens never collide); a longer one chains its 8-byte chunks through a multiply-xorshift
step. The per-file helpers (`tokens`, `token_hashes`, `shingle_hashes`) give the same hashes one
file at a time, for the split audit and the tests.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

TOKEN = re.compile(r"[A-Za-z_0-9]+")

# Odd 64-bit constants (golden ratio and splitmix64's); uint64 arithmetic wraps on purpose.
_STEP = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
# _LOW_BYTES[k]: the low k bytes of a little-endian word (k = 0..8).
_LOW_BYTES = np.array([0] + [(1 << (8 * k)) - 1 for k in range(1, 8)] + [(1 << 64) - 1], dtype=np.uint64)
# numpy works fastest on slices that stay in cache; a chunk is whole files of about this many bytes.
CHUNK_BYTES = 1 << 18


def tokens(text: str | None) -> list[str]:
    return TOKEN.findall(text) if text else []


@dataclass(frozen=True)
class Shingles:
    """Shingle hashes of a batch of files, back to back: file j owns
    `hashes[offsets[j]:offsets[j + 1]]` (repeats left in: MinHash does not mind them) and has
    `token_counts[j]` tokens."""
    hashes: np.ndarray  # uint64
    offsets: np.ndarray  # int64, one more than files
    token_counts: np.ndarray  # int64


# ----------------------------------------------------------------------------- bytes -> tokens
def _word_mask(data: np.ndarray) -> np.ndarray:
    """1 where a byte is in [A-Za-z_0-9], else 0 (uint8); arithmetic, which numpy vectorizes,
    where a 256-entry lookup table would be a slow gather."""
    digit = np.subtract(data, 48, dtype=np.uint8) < 10
    letter = np.subtract(data | 0x20, 97, dtype=np.uint8) < 26  # | 0x20 folds upper case onto lower
    return (digit | letter | (data == 95)).view(np.uint8)


def token_bounds(data: np.ndarray, starts_of_files: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) byte offsets of every token in `data`, the bytes of several files back to
    back (`starts_of_files`: where each file begins). A token never spans two files."""
    word = np.zeros(len(data) + 2, dtype=bool)
    word[1:-1] = _word_mask(data).view(bool)
    # Where the mask flips: a run of word bytes begins, or one past its end; they alternate,
    # start first (a boolean nonzero is numpy's fast one).
    bounds = np.flatnonzero(word[1:] != word[:-1])
    starts, ends = bounds[0::2], bounds[1::2]
    inner = np.unique(starts_of_files[(starts_of_files > 0) & (starts_of_files < len(data))])  # empty files repeat one
    if len(inner):
        cut = inner[word[inner] & word[inner + 1]]  # a word byte on both sides of a file start
        if len(cut):  # split those runs where the next file begins
            starts = np.insert(starts, np.searchsorted(starts, cut), cut)
            ends = np.insert(ends, np.searchsorted(ends, cut), cut)
    return starts, ends


def token_values(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """One uint64 per token: its bytes if at most 8, else its 8-byte chunks chained."""
    padded = np.zeros(len(data) + 8, dtype=np.uint8)
    padded[:len(data)] = data
    # words[i] = the 8 bytes from offset i (an unaligned, overlapping view: no copy per word)
    words = np.ndarray(shape=(len(data) + 1,), dtype="<u8", buffer=padded, strides=(1,))
    lengths = ends - starts
    values = words[starts] & _LOW_BYTES[np.minimum(lengths, 8)]
    longer = np.flatnonzero(lengths > 8)
    offset = 8
    with np.errstate(over="ignore"):
        while len(longer):
            rest = lengths[longer] - offset
            chunk = words[starts[longer] + offset] & _LOW_BYTES[np.minimum(rest, 8)]
            v = values[longer]
            v ^= v >> np.uint64(29)
            v *= _MIX1
            values[longer] = v ^ chunk
            offset += 8
            longer = longer[rest > 8]
    return values


# ----------------------------------------------------------------------------- tokens -> shingles
def _finalize(h: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, in place: every input bit reaches every output bit."""
    h ^= h >> np.uint64(30)
    h *= _MIX1
    h ^= h >> np.uint64(27)
    h *= _MIX2
    h ^= h >> np.uint64(31)
    return h


def fold_shingles(values: np.ndarray, token_offsets: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, offsets) of the word n-grams of each file, whose tokens are
    `values[token_offsets[j]:token_offsets[j + 1]]`. Order matters inside an n-gram (a
    polynomial fold). A file with fewer than `ngram` tokens (but some) is one shingle of all
    its tokens, so it is never empty when it has any token."""
    counts = np.diff(token_offsets)
    full = np.maximum(counts - ngram + 1, 0)  # n-grams that fit inside their file
    short = np.flatnonzero((counts > 0) & (counts < ngram))
    per_file = full.copy()
    per_file[short] = 1
    offsets = np.concatenate(([0], np.cumsum(per_file))).astype(np.int64)
    span = len(values) - ngram + 1
    with np.errstate(over="ignore"):
        if span > 0:
            folded = values[:span].copy()
            for k in range(1, ngram):
                folded *= _STEP
                folded += values[k:k + span]
            # An n-gram starting in a file's last ngram - 1 tokens runs into the next file.
            inside = np.ones(span, dtype=bool)
            for k in range(1, ngram):
                last = token_offsets[1:] - k
                inside[last[(last >= token_offsets[:-1]) & (last < span)]] = False
            folded = folded[inside]
        else:
            folded = np.empty(0, dtype=np.uint64)
        if len(short):  # rare: files of 1 .. ngram - 1 tokens, one shingle each, put in place
            first, n = token_offsets[:-1][short], counts[short]
            whole = values[first].copy()
            for k in range(1, int(n.max())):
                more = k < n
                whole[more] = whole[more] * _STEP + values[first[more] + k]
            out = np.empty(int(offsets[-1]), dtype=np.uint64)
            rest = np.ones(len(out), dtype=bool)
            rest[offsets[:-1][short]] = False
            out[rest] = folded
            out[offsets[:-1][short]] = whole
            folded = out
    return _finalize(folded), offsets


# ----------------------------------------------------------------------------- batches
def _utf8_parts(contents: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(bytes, offsets) of a string array, zero-copy where Arrow allows (nulls read as "")."""
    if isinstance(contents, pa.ChunkedArray):
        contents = contents.combine_chunks()
    if pa.types.is_large_string(contents.type):
        contents = contents.cast(pa.string())
    if len(contents) == 0:
        return np.empty(0, dtype=np.uint8), np.zeros(1, dtype=np.int64)
    _, offsets_buf, data_buf = contents.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=len(contents) + 1,
                            offset=contents.offset * 4).astype(np.int64)
    if data_buf is None or offsets[-1] == offsets[0]:
        return np.empty(0, dtype=np.uint8), offsets - offsets[0]
    data = np.frombuffer(data_buf, dtype=np.uint8, count=int(offsets[-1] - offsets[0]), offset=int(offsets[0]))
    return data, offsets - offsets[0]  # a null's offsets are equal: it reads as an empty file


def _chunks(offsets: np.ndarray, chunk_bytes: int) -> list[tuple[int, int]]:
    """File ranges [lo, hi) of about `chunk_bytes` bytes each (a larger file is a chunk alone)."""
    cuts = np.searchsorted(offsets, np.arange(chunk_bytes, int(offsets[-1]), chunk_bytes), side="right") - 1
    bounds = np.unique(np.concatenate(([0], cuts, [len(offsets) - 1])))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def batch_shingles(contents: pa.Array, ngram: int, chunk_bytes: int = CHUNK_BYTES) -> Shingles:
    """The shingle hashes of every file of a string array (nulls and empty strings have none)."""
    data, offsets = _utf8_parts(contents)
    hashes, counts, lengths = [], [], []
    for lo, hi in _chunks(offsets, chunk_bytes):
        part = data[offsets[lo]:offsets[hi]]
        file_starts = offsets[lo:hi + 1] - offsets[lo]
        starts, ends = token_bounds(part, file_starts[:-1])
        token_offsets = np.searchsorted(starts, file_starts)
        h, o = fold_shingles(token_values(part, starts, ends), token_offsets, ngram)
        hashes.append(h)
        lengths.append(np.diff(o))
        counts.append(np.diff(token_offsets))
    if not hashes:
        return Shingles(np.empty(0, np.uint64), np.zeros(1, np.int64), np.empty(0, np.int64))
    per_file = np.concatenate(lengths)
    return Shingles(np.concatenate(hashes), np.concatenate(([0], np.cumsum(per_file))).astype(np.int64),
                    np.concatenate(counts).astype(np.int64))


# ----------------------------------------------------------------------------- one file at a time
def token_hashes(toks: list[str]) -> np.ndarray:
    """The token values `batch_shingles` uses, for a list of tokens (ASCII by construction)."""
    data = np.frombuffer(" ".join(toks).encode(), dtype=np.uint8)
    starts, ends = token_bounds(data, np.zeros(1, dtype=np.int64))
    return token_values(data, starts, ends)


def shingle_hashes(hashes: np.ndarray, ngram: int) -> np.ndarray:
    """Sorted unique 64-bit hashes of the word n-grams of one file's token values: the set
    `batch_shingles` hashes for that file."""
    if len(hashes) == 0:
        return np.empty(0, dtype=np.uint64)
    out, _ = fold_shingles(np.asarray(hashes, dtype=np.uint64), np.array([0, len(hashes)], dtype=np.int64), ngram)
    return np.unique(out)
