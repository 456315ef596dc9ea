"""Tokens and shingles of a source file, as 64-bit hashes.

Tokens are the runs of `[A-Za-z_0-9]` (the text split on `[^A-Za-z_0-9]+`, as CodeParrot did).
Each token is hashed once with 64-bit xxhash; an n-gram's hash is folded from its tokens'
hashes with numpy, so a file costs one hash call per token, not one per shingle.
"""
from __future__ import annotations

import re

import numpy as np
import xxhash

_xxh64 = xxhash.xxh64_intdigest
TOKEN = re.compile(r"[A-Za-z_0-9]+")

# Odd 64-bit constants (golden ratio and splitmix64's); uint64 arithmetic wraps on purpose.
_STEP = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def tokens(text: str | None) -> list[str]:
    return TOKEN.findall(text) if text else []


def token_hashes(toks: list[str]) -> np.ndarray:
    """64-bit xxhash of each token's UTF-8 bytes (tokens are ASCII by construction)."""
    return np.fromiter(map(_xxh64, map(str.encode, toks)), dtype=np.uint64, count=len(toks))


def _finalize(h: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: every input bit reaches every output bit."""
    h = h ^ (h >> np.uint64(30))
    h = h * _MIX1
    h = h ^ (h >> np.uint64(27))
    h = h * _MIX2
    return h ^ (h >> np.uint64(31))


def shingle_hashes(hashes: np.ndarray, ngram: int) -> np.ndarray:
    """Sorted unique 64-bit hashes of the word n-grams of a token-hash sequence.

    Order matters inside an n-gram (a polynomial fold). A file with fewer than `ngram` tokens
    is one shingle of all its tokens, so it is never empty when it has any token."""
    n = min(ngram, len(hashes))
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    if n == 1 and ngram == 1:
        return np.unique(hashes)
    count = len(hashes) - n + 1
    with np.errstate(over="ignore"):
        folded = hashes[:count].copy()
        for k in range(1, n):
            folded = folded * _STEP + hashes[k:k + count]
        return np.unique(_finalize(folded))

