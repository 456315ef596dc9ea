"""Reference twins of the dedup stage's shingling, for benchmarks and tests only.

The stage hashes shingles (`codecorpus.stages.dedup.shingles.shingle_hashes`); the twins here
spell the same shingles out as strings, for exact Jaccard similarity and for feeding other
libraries (datasketch) the very shingles the stage sees. Importers put `lib/` on the path
(the bench scripts and tests do).
"""
from __future__ import annotations

from codecorpus.stages.dedup.shingles import tokens


def shingle_strings(text: str | None, ngram: int) -> set[str]:
    """The shingles of `text` as space-joined token n-grams: the same set, one for one, as the
    stage's hashes (a file with fewer than `ngram` tokens is one shingle of all of them)."""
    toks = tokens(text)
    n = min(ngram, len(toks))
    if n == 0:
        return set()
    return {" ".join(toks[i:i + n]) for i in range(len(toks) - n + 1)}


def jaccard(a: set, b: set) -> float:
    """Exact Jaccard similarity; two empty sets count as identical."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)
