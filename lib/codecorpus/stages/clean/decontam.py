"""Decontamination: drop files that contain a benchmark's prompt or solution.

Two methods (clean.decontam_methods), run in one pass over the files still kept: "exact", here,
and "ngram", normalised token n-grams that survive renaming and reformatting (`ngrams.py`).

Exact matching is on whitespace-normalised text (every run of whitespace becomes one space, ends
stripped: `" ".join(text.split())`), as BigCode matched benchmark strings, so re-indented or
re-wrapped copies are found too.

The matcher avoids testing every benchmark string against every file, in two steps.
1. One RE2 pass over the whole Arrow batch (`candidates`) keeps the files that contain, for some
   needle, three of its consecutive tokens separated by runs of characters other than printable
   ASCII (a superset of whitespace runs): any file containing the normalised needle contains
   those, so no file is missed. On the default corpus 4% of the files are candidates; the
   others never become Python strings for this method. (Windows of three: two let a third of
   the files through, four make RE2's DFA outgrow its memory and fall back to a slow engine; the
   alternation is cut into patterns of at most PATTERN_CHARS characters for the same reason.)
2. For a candidate, in Python: in a normalised needle `t1 t2 ... tn`, each inner token
   t2..t(n-1) sits between two spaces, so it must also be a whole token of any normalised text
   containing the needle. Each needle is indexed by its longest inner token (its anchor): a file
   is only searched for needles whose anchor is one of its tokens, which one set intersection
   over the file's tokens tells. Needles of one or two tokens have no anchor and are always
   searched.
The matcher runs over Arrow batches in the executors (`arrow_udf`), built once per batch
iterator.
"""
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from codecorpus.stages.clean.features import literal_pattern


def normalize(text: str) -> str:
    return " ".join(text.split())


WINDOW = 3  # consecutive needle tokens in a candidate pattern
PATTERN_CHARS = 16000  # the longest alternation one RE2 pattern gets
_NOT_PRINTABLE_ASCII = "[^!-~]+"  # every whitespace character, and more


def window(needle: str) -> str:
    """An RE2 pattern every file containing the normalised needle matches: its WINDOW
    consecutive inner tokens (all its tokens when it has fewer) of largest total length,
    separated by runs of anything but printable ASCII."""
    tokens = needle.split(" ")
    inner = tokens[1:-1] if len(tokens) > WINDOW + 1 else tokens
    spans = [inner[i:i + WINDOW] for i in range(max(1, len(inner) - WINDOW + 1))]
    best = max(spans, key=lambda w: (sum(map(len, w)), w))
    return _NOT_PRINTABLE_ASCII.join(literal_pattern([t]) for t in best)


def window_patterns(windows: list[str]) -> list[str]:
    """The windows as alternations of at most PATTERN_CHARS characters each."""
    out, current = [], []
    for w in windows:
        if current and sum(map(len, current)) + len(current) + len(w) > PATTERN_CHARS:
            out.append("|".join(current))
            current = []
        current.append(w)
    return out + (["|".join(current)] if current else [])


class Matcher:
    """Does a text contain any of the needles, after whitespace normalisation?"""

    def __init__(self, needles: Iterable[str]):
        self.by_anchor: dict[str, list[str]] = {}
        self.always: list[str] = []
        self.needles = sorted({normalize(n) for n in needles if n and n.strip()})
        for needle in self.needles:
            inner = needle.split(" ")[1:-1]
            if inner:
                anchor = max(inner, key=lambda t: (len(t), t))
                self.by_anchor.setdefault(anchor, []).append(needle)
            else:
                self.always.append(needle)
        self.anchors = frozenset(self.by_anchor)
        self.patterns = window_patterns(sorted({window(n) for n in self.needles}))

    def candidates(self, arr: pa.Array) -> np.ndarray:
        """Which values of a string array may contain a needle (null: no)."""
        found = np.zeros(len(arr), bool)
        for pattern in self.patterns:
            found |= pc.fill_null(pc.match_substring_regex(arr, pattern), False).to_numpy(zero_copy_only=False)
        return found

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

        def found_by(arr: pa.Array) -> list[str | None]:
            checked = np.flatnonzero(pc.is_valid(arr).to_numpy(zero_copy_only=False)).tolist()
            found = [[] for _ in range(len(arr))]
            if exact is not None:  # only the RE2 candidates become Python strings here
                for i in np.flatnonzero(exact.candidates(arr)).tolist():
                    if exact.contains_any(arr[i].as_py()):
                        found[i].append("exact")
            if ngram is not None and checked:
                texts = arr.take(pa.array(checked))  # scanned as one Arrow array, no str per file
                for i, item in zip(checked, ngram.first_matches(texts)):
                    if item is not None:
                        found[i].append("ngram")
            return ["+".join(f) or None for f in found]

        for arr in batches:
            yield pa.array(found_by(arr), pa.string())

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
