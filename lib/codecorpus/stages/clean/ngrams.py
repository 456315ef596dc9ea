"""Decontamination that survives renaming and reformatting: normalised token n-grams.

A text becomes a sequence of token codes that keeps what a rename or a reformat leaves alone:
- keywords (the 35 hard keywords of Python 3.11, True/False/None included) and operators and
  brackets keep a code each;
- every identifier becomes ID (soft keywords `match`, `case`, `type`, `_` too: they are common
  variable names), every string literal STR (prefixes, quotes, f-string contents and docstrings
  included), every number NUM; any other character OTHER;
- comments, whitespace, line breaks, backslash continuations and `;` are skipped, and a `,`
  right before a closing bracket (a trailing comma, which formatters add and remove) is dropped.
The tokenizer is one regular expression (`findall`), not Python's `tokenize` (measured on the
default corpus: about 10 MB/s against 1.6 MB/s, and `tokenize` raises on the fragments a corpus
file may hold): it never fails, and the same text gives the same codes on every machine. It
does not track bracket or f-string nesting; a string left open becomes its lone quote (a STR)
followed by the tokens after it. The same tokenizer is compiled as `codecorpus_scan`
(native/codecorpus_scan.c, built by `pip install`), which reads a whole Arrow string array at
once and gives the same codes (tests/test_ngram_scan.py); without it the regex runs, with a
warning in the log.

An n-gram of codes hashes to 64 bits by tabulation: a table of random 64-bit words per position
and code (from BLAKE2b of the position and code, so fixed forever), XORed over the n positions.
A polynomial over codes this small would have structured collisions; tabulation has none.

A benchmark item (a prompt with its solution, a solution, a `text` or `code` field) is its set of
distinct n-grams; items with fewer than `min_ngrams` of them are left to the exact matcher (after
normalisation, a short solution such as `return [x for x in xs if x]` is common code). A file
matches an item when one stretch of it (SPREAD times the item's length) holds at least `overlap`
of the item's distinct n-grams. The benchmark side is small (HumanEval: 254 items, under 6,000
hashes) and travels with the UDF; docs/decontamination.md has the measured recall and false
positives.
"""
from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from codecorpus.core import native

# Hard keywords of Python 3.11, spelled out: the codes must not depend on the running version.
KEYWORDS = ("False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
            "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global",
            "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise",
            "return", "try", "while", "with", "yield")
OPERATORS = ("+", "-", "*", "/", "//", "%", "**", "@", "<<", ">>", "&", "|", "^", "~", "<", ">",
             "<=", ">=", "==", "!=", "->", "+=", "-=", "*=", "/=", "//=", "%=", "**=", "@=",
             "<<=", ">>=", "&=", "|=", "^=", ":=", "=", "(", ")", "[", "]", "{", "}", ",", ":",
             ".", "...")
ID, STR, NUM, OTHER = 1, 2, 3, 4
CODES = {t: i for i, t in enumerate(KEYWORDS + OPERATORS, start=5)}
N_CODES = len(CODES) + 5
COMMA = CODES[","]
IS_CLOSER = np.isin(np.arange(N_CODES), [CODES[")"], CODES["]"], CODES["}"]])

_STRING = (r"[rRbBuUfF]{0,2}(?:'''[^'\\]*(?:(?:\\[\s\S]|'(?!''))[^'\\]*)*'''"
           r'|"""[^"\\]*(?:(?:\\[\s\S]|"(?!""))[^"\\]*)*"""'
           r"|'[^'\\\n]*(?:\\[\s\S][^'\\\n]*)*'"
           r'|"[^"\\\n]*(?:\\[\s\S][^"\\\n]*)*")')
_OPERATOR = r"\*\*=?|//=?|<<=?|>>=?|\.\.\.|->|[-+*/%@&|^<>=!:]=|[^\w\s]"
# What lies between tokens (whitespace, continuations, comments, ";") is consumed before each
# token, so `findall` returns only tokens; runs of blanks go through a character class, which is
# faster than an alternation per character. A comment is possessive (`*+`): it is never cut
# short to let its tail become a token. After the last token the skipped tail ends in an empty
# match (`\Z`), dropped. Strings come first: "r'x'" is one token, not r + 'x'.
_SKIP = r"[\s;]*(?:(?:\\\r?\n|#[^\r\n]*+)[\s;]*)*"
_TOKEN = re.compile(_SKIP + "(" + _STRING + r"|\d\w*(?:\.\w*)?|\w+|\.\d\w*|" + _OPERATOR + r"|\Z)")
_FILTER_MASK = (1 << 20) - 1
_CACHE_LIMIT = 1 << 20  # memoised token codes per matcher (identifiers repeat; bounded anyway)


def _classify(token: str) -> int:
    if token[-1] in "'\"":  # a string literal always ends with its quote (or is a lone one)
        return STR
    first = token[0]
    if first.isdigit() or first == ".":
        return NUM
    if first.isalpha() or first == "_" or not first.isascii():
        return ID
    return OTHER


class _Codes(dict):
    """Token -> code, memoised: a miss is classified once (identifiers repeat); bounded."""

    def __init__(self):
        super().__init__(CODES)

    def __missing__(self, token: str) -> int:
        code = _classify(token)
        if code != STR and len(self) < _CACHE_LIMIT:  # strings are mostly unique
            self[token] = code
        return code


def regex_token_codes(text: str, cache: _Codes | None = None) -> np.ndarray:
    """The normalised token codes of a text (uint8), by the regular expression: the reference
    the compiled scanner is checked against, and the fallback where it is not built."""
    tokens = _TOKEN.findall(text)
    while tokens and not tokens[-1]:  # the empty match at the end
        tokens.pop()
    lookup = (cache if cache is not None else _Codes()).__getitem__
    arr = np.frombuffer(bytes(map(lookup, tokens)), np.uint8)  # faster than np.fromiter here
    if arr.size > 1:  # trailing commas: a "," right before a closing bracket
        trailing = np.append((arr[:-1] == COMMA) & IS_CLOSER[arr[1:]], False)
        arr = arr[~trailing]
    return arr


_SCAN_TABLE = (list(CODES), list(CODES.values()), ID, STR, NUM, OTHER, COMMA, ")]}")


def _utf8_buffers(texts) -> tuple[memoryview | bytes, np.ndarray]:
    """The UTF-8 bytes and n + 1 int64 offsets of texts (an Arrow string array, nulls read as
    empty texts, or a list of str; a lone surrogate passes through as the regex sees it)."""
    if isinstance(texts, (pa.Array, pa.ChunkedArray)):
        arr = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
        if arr.null_count:
            arr = pc.fill_null(arr, "")
        width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
        _, offsets, data = arr.buffers()
        offsets = np.frombuffer(offsets, width)[arr.offset:arr.offset + len(arr) + 1]
        return (data if data is not None else b""), offsets.astype(np.int64)
    encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return b"".join(encoded), offsets


def batch_codes(texts, cache: _Codes | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The token codes of many texts (an Arrow string array or a list of str) as one uint8
    array, and n + 1 int64 starts: text i's codes are codes[starts[i]:starts[i + 1]]."""
    scan = native.function("scan")  # None: the regular expression, same codes, slower
    if scan is not None:
        data, offsets = _utf8_buffers(texts)
        codes, starts = scan(data, offsets, _SCAN_TABLE)
        return np.frombuffer(codes, np.uint8), np.frombuffer(starts, np.int64)
    if isinstance(texts, (pa.Array, pa.ChunkedArray)):
        texts = [t or "" for t in texts.to_pylist()]
    cache = cache if cache is not None else _Codes()
    parts = [regex_token_codes(t, cache) for t in texts]
    starts = np.zeros(len(parts) + 1, np.int64)
    np.cumsum([len(c) for c in parts], out=starts[1:])
    return (np.concatenate(parts) if parts else np.empty(0, np.uint8)), starts


def token_codes(text: str, cache: _Codes | None = None) -> np.ndarray:
    """The normalised token codes of one text (uint8)."""
    return batch_codes([text], cache)[0]


def _table(n: int) -> np.ndarray:
    """n x N_CODES random 64-bit words, derived from BLAKE2b: fixed for every run and machine."""
    words = [int.from_bytes(hashlib.blake2b(f"{j}:{c}".encode(), digest_size=8).digest(), "little")
             for j in range(n) for c in range(N_CODES)]
    return np.array(words, np.uint64).reshape(n, N_CODES)


def ngram_hashes(codes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The 64-bit hash of every n-gram of `codes` (n = len(table)), in order."""
    n = len(table)
    m = len(codes) - n + 1
    if m <= 0:
        return np.empty(0, np.uint64)
    h = table[0][codes[:m]]
    for j in range(1, n):
        h ^= table[j][codes[j:j + m]]
    return h


@dataclass(frozen=True)
class NgramItems:
    """The benchmark side, built on the driver and shipped to the executors (small)."""
    n: int
    overlap: float
    names: tuple[str, ...]              # where each item comes from ("HumanEval/0 prompt+solution")
    items: tuple[tuple[int, ...], ...]  # each item's distinct n-gram hashes, sorted
    spans: tuple[int, ...]              # each item's number of n-gram positions (its length)
    skipped_short: int = 0              # item texts with fewer than min_ngrams distinct n-grams

    def __len__(self) -> int:
        return len(self.items)


def item_texts(record: dict, label: str) -> list[tuple[str, str]]:
    """(name, text) of the parts of one benchmark record that are matched as n-grams: the prompt
    with its solution (the whole function), the solution alone, a `text` or a `code` field."""
    def text(field):
        v = record.get(field)
        return v if isinstance(v, str) and v.strip() else None

    out = []
    prompt, solution = text("prompt"), text("canonical_solution")
    if prompt and solution:
        out.append((f"{label} prompt+solution", prompt + solution))
    for field in ("canonical_solution", "text", "code"):
        if text(field):
            out.append((f"{label} {field}", text(field)))
    return out


def build_items(records: Iterable[dict], n: int, overlap: float, min_ngrams: int,
                prefix: str = "") -> NgramItems:
    """The distinct n-gram sets of the records' items; identical sets are one item."""
    table, cache = _table(n), _Codes()
    seen: dict[tuple, tuple[str, int]] = {}
    skipped = 0
    for i, rec in enumerate(records):
        label = f"{prefix}{rec.get('task_id', i)}"
        for name, text in item_texts(rec, label):
            hashes = ngram_hashes(token_codes(text, cache), table)
            grams = tuple(sorted(set(hashes.tolist())))
            if len(grams) < max(min_ngrams, 1):
                skipped += 1
            elif grams not in seen:
                seen[grams] = (name, len(hashes))
    ordered = sorted(seen.items(), key=lambda kv: kv[1][0])
    return NgramItems(n, overlap, tuple(v[0] for _, v in ordered), tuple(g for g, _ in ordered),
                      tuple(v[1] for _, v in ordered), skipped)


def merge(parts: list[NgramItems]) -> NgramItems:
    """Items of several benchmarks (same n and overlap) as one."""
    first = parts[0]
    return NgramItems(first.n, first.overlap, tuple(x for p in parts for x in p.names),
                      tuple(x for p in parts for x in p.items), tuple(x for p in parts for x in p.spans),
                      sum(p.skipped_short for p in parts))


# A copy is one stretch of the file: the n-grams found must lie within SPREAD times the item's
# length (room for statements inserted into the copy). Without this, a large file collects an
# item's generic n-grams from all over (sympy's operations.py held 75% of one solution's).
SPREAD = 2


class NgramMatcher:
    """Built once per batch iterator in an executor: which item, if any, a text contains."""

    def __init__(self, items: NgramItems):
        self.table = _table(items.n)
        self.names, self.sizes, self.spans = items.names, [len(g) for g in items.items], items.spans
        postings: dict[int, list[int]] = {}
        for k, grams in enumerate(items.items):
            for h in grams:
                postings.setdefault(h, []).append(k)
        self.hashes = np.array(sorted(postings), np.uint64)
        self.postings = [postings[h] for h in self.hashes.tolist()]
        # A bit per value of the low 20 bits: most of a file's n-grams are ruled out by one
        # lookup, before the binary search over the benchmark hashes.
        self.maybe = np.zeros(_FILTER_MASK + 1, bool)
        self.maybe[self.hashes & np.uint64(_FILTER_MASK)] = True
        self.overlap = items.overlap
        self.cache = _Codes()
        self.fewest: dict[float, int] = {}

    def _fewest(self, floor: float) -> int:
        if floor not in self.fewest:
            self.fewest[floor] = min(math.ceil(floor * size - 1e-9) for size in self.sizes)
        return self.fewest[floor]

    def hits(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(positions in the text, benchmark hash indices) of the text's n-grams that occur in
        some item, in text order."""
        return self.batch_hits([text])[0]

    def batch_hits(self, texts) -> list[tuple[np.ndarray, np.ndarray]]:
        """`hits` of each text (an Arrow string array or a list of str): tokenized together, then
        hashed, filtered and searched as one array (an n-gram that would straddle two texts is
        dropped)."""
        codes, starts = batch_codes(texts, self.cache)
        where, h = self.candidates(codes)
        rows = np.searchsorted(starts, where, side="right") - 1
        inside = where <= starts[rows + 1] - len(self.table)  # the whole n-gram in its own text
        where, rows, h = where[inside], rows[inside], h[inside]
        pos = np.minimum(np.searchsorted(self.hashes, h), len(self.hashes) - 1)
        found = self.hashes[pos] == h
        at, idx, rows = where[found] - starts[rows[found]], pos[found], rows[found]
        bounds = np.searchsorted(rows, np.arange(len(texts) + 1))
        return [(at[a:b], idx[a:b]) for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]

    def candidates(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions, hashes) of the n-grams of `codes` that pass the low-bits filter: one
        compiled pass (codecorpus_scan.ngram_candidates), or numpy over whole arrays where the
        extension is not built (the same answer)."""
        compiled = native.function("ngram_candidates")
        if compiled is None:
            h = ngram_hashes(codes, self.table)
            where = np.flatnonzero(self.maybe[h & np.uint64(_FILTER_MASK)])
            return where, h[where]
        where, hashes = compiled(np.ascontiguousarray(codes, np.uint8), self.table, self.maybe, N_CODES)
        return np.frombuffer(where, np.int64), np.frombuffer(hashes, np.uint64)

    def shares(self, text: str, floor: float) -> dict[int, float]:
        """Item -> the largest share of its distinct n-grams within one stretch of the text, for
        the items of which the whole text holds at least `floor` (0 < floor <= 1)."""
        return self._shares(*self.hits(text), floor)

    def _shares(self, at: np.ndarray, idx: np.ndarray, floor: float) -> dict[int, float]:
        if not self.sizes or len(idx) < self._fewest(floor):  # no item can reach its floor
            return {}
        distinct = np.unique(idx)
        if len(distinct) < self._fewest(floor):
            return {}
        counts = Counter(k for i in distinct.tolist() for k in self.postings[i])
        out = {}
        for k, c in counts.items():
            if c >= floor * self.sizes[k] - 1e-9:
                out[k] = self._densest(k, at, idx) / self.sizes[k]
        return out

    def _densest(self, k: int, at: np.ndarray, idx: np.ndarray) -> int:
        """The most distinct n-grams of item k in any stretch of SPREAD x its length."""
        mine = [(a, i) for a, i in zip(at.tolist(), idx.tolist()) if k in self.postings[i]]
        width, in_window, best, lo = SPREAD * self.spans[k], Counter(), 0, 0
        for a, i in mine:
            in_window[i] += 1
            while mine[lo][0] <= a - width:
                old = mine[lo][1]
                in_window[old] -= 1
                if not in_window[old]:
                    del in_window[old]
                lo += 1
            best = max(best, len(in_window))
        return best

    def first_match(self, text: str) -> int | None:
        """The first item (in item order) of which one stretch of the text holds at least
        `overlap` of the distinct n-grams, or None."""
        return self.first_matches([text])[0]

    def first_matches(self, texts) -> list[int | None]:
        """`first_match` of each text (an Arrow string array or a list of str), over one batch."""
        out = []
        for at, idx in self.batch_hits(texts):
            found = [k for k, share in self._shares(at, idx, self.overlap).items() if share >= self.overlap - 1e-9]
            out.append(min(found) if found else None)
        return out
