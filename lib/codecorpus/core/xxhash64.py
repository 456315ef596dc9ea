"""Spark's `xxhash64(lit(<int>), <long column>)` over whole numpy arrays.

Stages key files by `F.xxhash64(F.lit(seed), F.col("id"))` (the tokens stage's packing order,
the tokenizer sample). Code that reads Parquet with pyarrow instead of Spark (the tokenizer
sample's executors, the GPU machine's packer) must compute the very same keys. Spark folds its
arguments left to right through XXH64 starting from seed 42: the 4-byte int first, its hash
then seeding the XXH64 of the 8-byte long. For inputs of 4 and 8 bytes XXH64 is a fixed
handful of multiply/rotate/xor steps, so it vectorises as unsigned 64-bit numpy arithmetic
(which wraps, as the algorithm wants).
"""
from __future__ import annotations

import numpy as np

SPARK_SEED = 42
_MASK = (1 << 64) - 1
_P1, _P2, _P3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9
_P4, _P5 = 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


def _avalanche(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(_P2)
    h = h ^ (h >> np.uint64(29))
    h = h * np.uint64(_P3)
    return h ^ (h >> np.uint64(32))


def _hash_int(value: int, seed: int) -> int:
    """XXH64 of one 4-byte little-endian int (Spark's hashInt)."""
    h = np.array([(seed + _P5 + 4) & _MASK], np.uint64)
    h = h ^ (np.uint64(value & 0xFFFFFFFF) * np.uint64(_P1))
    h = _rotl(h, 23) * np.uint64(_P2) + np.uint64(_P3)
    return int(_avalanche(h)[0])


def _hash_longs(values: np.ndarray, seed: int) -> np.ndarray:
    """XXH64 of each 8-byte little-endian long (Spark's hashLong), as uint64."""
    v = np.ascontiguousarray(values, dtype=np.int64).view(np.uint64)
    k = _rotl(v * np.uint64(_P2), 31) * np.uint64(_P1)
    h = np.uint64((seed + _P5 + 8) & _MASK) ^ k
    h = _rotl(h, 27) * np.uint64(_P1) + np.uint64(_P4)
    return _avalanche(h)


def spark_xxhash64(lit: int, ids) -> np.ndarray:
    """`F.xxhash64(F.lit(lit), F.col("id"))` for every id: a signed int64 array like Spark's."""
    with np.errstate(over="ignore"):
        return _hash_longs(np.asarray(ids), _hash_int(int(lit), SPARK_SEED)).view(np.int64)
