"""MinHash signatures in numpy, computed over Arrow batches inside executors.

Permutation i maps a 64-bit shingle hash h (taken mod p) to (a_i * h + b_i) mod p with
p = 2^61 - 1 (a Mersenne prime, so reducing mod p is a shift, a mask and an add). b_i is drawn
from [0, p) and a_i from [1, 2^32) by numpy's seeded RNG: with a_i below 2^32 the product
splits into two products that fit 64 bits, so the arithmetic is exact without 128-bit
integers (checked against Python integers in the tests). The signature of a file is the
minimum of each permutation over its shingles.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from codecorpus.stages.dedup.shingles import shingle_hashes, token_hashes, tokens

MERSENNE_61 = (1 << 61) - 1
_P = np.uint64(MERSENNE_61)
_LOW32 = np.uint64(0xFFFFFFFF)
_LOW29 = np.uint64((1 << 29) - 1)
_MAX = np.iinfo(np.uint64).max
# Rows of the (shingles x permutations) block computed at once: small enough to stay in cache.
_CHUNK = 128

SIGNATURE_DDL = "id BIGINT, bytes BIGINT, keys ARRAY<BIGINT>, sig ARRAY<BIGINT>"


@dataclass(frozen=True)
class MinHashParams:
    ngram: int
    min_tokens: int
    num_perm: int
    bands: int
    rows: int
    seed: int


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 1 << 32, size=num_perm, dtype=np.uint64)
    b = rng.integers(0, MERSENNE_61, size=num_perm, dtype=np.uint64)
    return a, b


def signatures(shingles: np.ndarray, starts: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MinHash signatures of several files at once.

    `shingles` holds every file's shingle hashes back to back, file j starting at `starts[j]`
    (each file has at least one shingle). Returns (files x num_perm) uint64 values below p."""
    n_files, num_perm = len(starts), len(a)
    out = np.full((n_files, num_perm), _MAX, dtype=np.uint64)
    if n_files == 0:
        return out
    # x = x_high * 2^29 + x_low with x_low < 2^29 and x_high < 2^32, so that with a < 2^32
    #   a * x_low < 2^61, and (a * x_high) * 2^29 = z * 2^29 = (z >> 32) * 2^61 + (z & (2^32-1)) * 2^29
    #   where 2^61 = 1 (mod p): every term fits in 64 bits and their sum stays below 2^63.
    x = shingles % _P
    x_low, x_high = x & _LOW29, x >> np.uint64(29)
    owner = np.repeat(np.arange(n_files), np.diff(np.append(starts, len(x))))
    prod = np.empty((_CHUNK, num_perm), np.uint64)
    high = np.empty((_CHUNK, num_perm), np.uint64)
    tmp = np.empty((_CHUNK, num_perm), np.uint64)
    for lo in range(0, len(x), _CHUNK):
        m = min(_CHUNK, len(x) - lo)
        r, z, t = prod[:m], high[:m], tmp[:m]
        np.multiply(a, x_low[lo:lo + m, None], out=r)
        np.multiply(a, x_high[lo:lo + m, None], out=z)
        np.right_shift(z, np.uint64(32), out=t)
        r += t
        z &= _LOW32
        z <<= np.uint64(29)
        r += z
        r += b
        np.right_shift(r, np.uint64(61), out=t)  # one fold: r < 2^61 + 4 afterwards
        r &= _P
        r += t
        who = owner[lo:lo + m]
        if who[0] == who[-1]:  # the usual case: the whole chunk belongs to one file
            np.minimum(out[who[0]], r.min(axis=0), out=out[who[0]])
        else:
            cuts = np.concatenate(([0], np.flatnonzero(who[1:] != who[:-1]) + 1))
            files = who[cuts]
            out[files] = np.minimum(out[files], np.minimum.reduceat(r, cuts, axis=0))
    out[out >= _P] -= _P  # the fold leaves p..p+3 unreduced; make them canonical
    return out


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(files x bands) 64-bit keys: band k of a file is the hash of its rows' values, mixed
    with k so that equal values in different bands never share a bucket by accident."""
    n = sigs.shape[0]
    keys = np.empty((n, bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(bands):
            block = sigs[:, k * rows:(k + 1) * rows]
            h = np.full(n, np.uint64(k + 1) * np.uint64(0x9E3779B97F4A7C15), dtype=np.uint64)
            for j in range(rows):
                h = (h ^ block[:, j]) * np.uint64(0xBF58476D1CE4E5B9)
                h ^= h >> np.uint64(29)
            keys[:, k] = h
    return keys


def _list_array(matrix: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Rows of `matrix` as a list array with one entry per `valid` flag: null where False."""
    k = matrix.shape[1]
    offsets = np.concatenate(([0], np.cumsum(valid * k))).astype(np.int32)
    mask = pa.array(~valid)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(matrix.reshape(-1).view(np.int64)), mask=mask)


def signature_batch(ids: np.ndarray, contents: pa.Array, params: MinHashParams,
                    perms: tuple[np.ndarray, np.ndarray]) -> pa.RecordBatch:
    """One row per file: id, UTF-8 bytes, and band keys and signature (values below 2^61, so
    they fit a signed BIGINT), both null for files with fewer than `min_tokens` tokens."""
    if isinstance(contents, pa.ChunkedArray):
        contents = contents.combine_chunks()
    hashed, parts = [], []
    for i, text in enumerate(contents.to_pylist()):
        toks = tokens(text)
        if len(toks) >= params.min_tokens:
            hashed.append(i)
            parts.append(shingle_hashes(token_hashes(toks), params.ngram))
    lengths = np.array([len(p) for p in parts], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])) if parts else np.empty(0, np.int64)
    flat = np.concatenate(parts) if parts else np.empty(0, np.uint64)
    sigs = signatures(flat, starts, *perms)
    keys = band_keys(sigs, params.bands, params.rows)
    valid = np.zeros(len(ids), dtype=bool)
    valid[hashed] = True
    size = pc.fill_null(pc.binary_length(contents), 0).cast(pa.int64())
    return pa.RecordBatch.from_arrays(
        [pa.array(ids, type=pa.int64()), size, _list_array(keys, valid), _list_array(sigs, valid)],
        names=["id", "bytes", "keys", "sig"])


def signature_batches(batches: Iterator[pa.RecordBatch], params: MinHashParams) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: (id, content) batches -> signature rows."""
    perms = permutations(params.num_perm, params.seed)
    for batch in batches:
        ids = batch.column("id").to_numpy(zero_copy_only=False)
        yield signature_batch(ids, batch.column("content"), params, perms)
