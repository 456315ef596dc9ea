"""Decontamination: drop files that contain a benchmark's prompt or solution.

Two methods (clean.decontam_methods), run in one pass over the files still kept: "exact", here,
and "ngram", normalised token n-grams that survive renaming and reformatting (`ngrams.py`).

Exact matching is on whitespace-normalised text (every run of whitespace becomes one space, ends
stripped: `" ".join(text.split())`), as BigCode matched benchmark strings, so re-indented or
re-wrapped copies are found too.

The matcher avoids testing every benchmark string against every file. In a normalised needle
`t1 t2 ... tn`, each inner token t2..t(n-1) sits between two spaces, so it must also be a whole
token of any normalised text containing the needle. Each needle is indexed by its longest inner
token (its anchor): a file is only searched for needles whose anchor is one of its tokens, which
one set intersection over the file's tokens tells. Needles of one or two tokens have no anchor
and are always searched. The matcher runs over Arrow batches in the executors (`arrow_udf`),
built once per batch iterator.
"""
from typing import Iterable, Iterator

import pyarrow as pa


def normalize(text: str) -> str:
    return " ".join(text.split())


class Matcher:
    """Does a text contain any of the needles, after whitespace normalisation?"""

    def __init__(self, needles: Iterable[str]):
        self.by_anchor: dict[str, list[str]] = {}
        self.always: list[str] = []
        for needle in sorted({normalize(n) for n in needles if n and n.strip()}):
            inner = needle.split(" ")[1:-1]
            if inner:
                anchor = max(inner, key=lambda t: (len(t), t))
                self.by_anchor.setdefault(anchor, []).append(needle)
            else:
                self.always.append(needle)
        self.anchors = frozenset(self.by_anchor)

    def __len__(self) -> int:
        return sum(map(len, self.by_anchor.values())) + len(self.always)

    def contains_any(self, text: str) -> bool:
        tokens = text.split()
        hits = self.anchors.intersection(tokens)
        if not hits and not self.always:
            return False
        normalized = " ".join(tokens)
        candidates = [n for a in hits for n in self.by_anchor[a]] + self.always
        return any(n in normalized for n in candidates)


METHODS = ("exact", "ngram")


def contamination_udf(needles: list[str], ngram_items=None):
    """An Arrow UDF: string column (null = not checked) -> which methods found a benchmark item in
    it, "+"-joined in METHODS order ("exact", "ngram", "exact+ngram"), or null (none, or not
    checked). `needles` (exact substrings) and `ngram_items` (an `ngrams.NgramItems`) may be
    empty; both run on every checked file, so the counts can tell what each method adds."""
    from pyspark.sql.functions import arrow_udf

    needles = list(needles)

    def contaminated(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        from codecorpus.stages.clean.ngrams import NgramMatcher

        exact = Matcher(needles) if needles else None
        ngram = NgramMatcher(ngram_items) if ngram_items else None

        def methods(text: str) -> str | None:
            found = []
            if exact is not None and exact.contains_any(text):
                found.append("exact")
            if ngram is not None and ngram.first_match(text) is not None:
                found.append("ngram")
            return "+".join(found) or None

        for arr in batches:
            yield pa.array([None if t is None else methods(t) for t in arr.to_pylist()], pa.string())

    return arrow_udf(contaminated, "string")


def benchmark_needles(records: Iterable[dict], min_chars: int) -> tuple[list[str], int]:
    """Normalised prompt/solution strings of benchmark records; (kept, skipped as too short)."""
    kept, skipped = set(), set()
    for rec in records:
        for field in ("prompt", "canonical_solution", "text", "code"):
            value = rec.get(field)
            if isinstance(value, str) and value.strip():
                norm = normalize(value)
                (kept if len(norm) >= min_chars else skipped).add(norm)
    return sorted(kept), len(skipped - kept)
