"""MinHash signatures and LSH band keys of whole Arrow batches, inside executors.

Shingling is numpy over the batch's bytes (`shingles.batch_shingles`); the signatures are one
call per batch into rensa's R-MinHash (Rust, SIMD), which takes every file's shingle hashes as
one flat buffer with row offsets and returns one row of `num_perm` 32-bit values per file:
permutation i maps a shingle hash h to the high 32 bits of a_i * h + b_i (mod 2^64), with
(a_i, b_i) drawn from a Xoshiro256++ stream seeded with `dedup.seed`, and keeps the minimum.
A file's signature depends only on its own shingles, never on the batch it came in (the tests
check this), which is what keeps the stage's outputs independent of partitioning.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from codecorpus.stages.dedup.shingles import batch_shingles

# sig values are unsigned 32-bit; stored as INT by their bit pattern (only equality is used).
SIGNATURE_DDL = "id BIGINT, bytes BIGINT, keys ARRAY<BIGINT>, sig ARRAY<INT>"

_BAND_SEED = np.uint64(0x9E3779B97F4A7C15)
_BAND_MIX = np.uint64(0xBF58476D1CE4E5B9)


@dataclass(frozen=True)
class MinHashParams:
    ngram: int
    min_tokens: int
    num_perm: int
    bands: int
    rows: int
    seed: int


def signatures(hashes: np.ndarray, offsets: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    """(files x num_perm) uint32 MinHash signatures: file j's shingles are
    `hashes[offsets[j]:offsets[j + 1]]`; a file without shingles gets all 2^32 - 1."""
    from rensa import RMinHash  # imported in the executor, where the work is

    if len(offsets) <= 1:
        return np.empty((0, num_perm), dtype=np.uint32)
    matrix = RMinHash.digest_matrix_from_flat_token_hashes(
        np.ascontiguousarray(hashes, dtype=np.uint64), np.ascontiguousarray(offsets, dtype=np.uint64),
        num_perm, seed)
    return np.array(matrix.to_rows(), dtype=np.uint32).reshape(len(offsets) - 1, num_perm)


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(files x bands) 64-bit keys: band k of a file is a hash of its rows' values, seeded with
    k so that equal values in different bands never share a bucket by accident."""
    block = sigs[:, :bands * rows].reshape(len(sigs), bands, rows).astype(np.uint64)
    h = np.broadcast_to(np.arange(1, bands + 1, dtype=np.uint64) * _BAND_SEED, (len(sigs), bands)).copy()
    with np.errstate(over="ignore"):
        for j in range(rows):
            h ^= block[:, :, j]
            h *= _BAND_MIX
            h ^= h >> np.uint64(29)
    return h


def _list_array(matrix: np.ndarray, valid: np.ndarray, value_type: pa.DataType) -> pa.Array:
    """Rows of `matrix` as a list array with one entry per `valid` flag: null where False."""
    width = matrix.shape[1]
    kept = matrix[valid].reshape(-1)
    offsets = np.concatenate(([0], np.cumsum(valid * width))).astype(np.int32)
    values = pa.array(kept.view(np.int64 if value_type == pa.int64() else np.int32), value_type)
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(~valid))


def signature_batch(ids: np.ndarray, contents: pa.Array, params: MinHashParams) -> pa.RecordBatch:
    """One row per file: id, UTF-8 bytes, band keys and signature, both null for files with
    fewer than `min_tokens` tokens."""
    sh = batch_shingles(contents, params.ngram)
    valid = sh.token_counts >= params.min_tokens
    sigs = signatures(sh.hashes, sh.offsets, params.num_perm, params.seed)
    keys = band_keys(sigs, params.bands, params.rows)
    size = pc.fill_null(pc.binary_length(contents), 0).cast(pa.int64())
    return pa.RecordBatch.from_arrays(
        [pa.array(ids, type=pa.int64()), size, _list_array(keys, valid, pa.int64()),
         _list_array(sigs, valid, pa.int32())],
        names=["id", "bytes", "keys", "sig"])


def signature_batches(batches: Iterator[pa.RecordBatch], params: MinHashParams) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: (id, content) batches -> signature rows."""
    for batch in batches:
        ids = batch.column("id").to_numpy(zero_copy_only=False)
        yield signature_batch(ids, batch.column("content"), params)
