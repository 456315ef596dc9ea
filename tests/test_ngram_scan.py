"""The compiled n-gram tokenizer (native/codecorpus_scan.c) gives exactly the regular
expression's codes: on code points of every class and length in several contexts, on random texts made of the
characters the scanner treats specially, on real files, and on Arrow arrays of both offset
widths, sliced and with nulls; bad input to it is a clear error; without it the regex runs."""
from __future__ import annotations

import random
import re
import sysconfig
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from codecorpus.core import native as compiled
from codecorpus.stages.clean import ngrams

codecorpus_scan = pytest.importorskip("codecorpus_scan", reason="the compiled scanner is built by pip install")
STDLIB = Path(sysconfig.get_paths()["stdlib"])


def regex(text: str) -> list[int]:
    return ngrams.regex_token_codes(text).tolist()


def native(texts) -> list[list[int]]:
    codes, starts = ngrams.batch_codes(texts)
    return [codes[a:b].tolist() for a, b in zip(starts[:-1].tolist(), starts[1:].tolist())]


def assert_same(texts: list[str]):
    got = native(texts)
    bad = [t for t, g in zip(texts, got) if g != regex(t)]
    assert not bad, f"{len(bad)} texts differ, first: {bad[0]!r}"


ALL = [chr(c) for c in range(0x110000)]  # surrogates included: a str can hold them


def test_the_regex_classes_are_the_predicates_the_scanner_uses():
    # The C code asks Python's own tables (Py_UNICODE_ISSPACE, ISALNUM, ISDECIMAL); the regex's
    # \s, \w and \d must be exactly those, on every code point.
    text = "".join(ALL)
    for pattern, pred in ((r"\s", str.isspace), (r"\w", lambda c: c.isalnum() or c == "_"),
                          (r"\d", str.isdecimal)):
        assert re.findall(pattern, text) == [c for c in ALL if pred(c)], pattern


def test_code_points_in_every_context():
    # Every code point of one and two UTF-8 bytes, every one that is a blank, digit or number,
    # and a stride through the rest (three and four bytes, surrogates).
    special = [c for c in ALL if c.isspace() or c.isnumeric() or c.isdigit()]
    picked = ALL[:0x800] + ALL[0x800:0x10000:7] + ALL[0x10000::97] + special
    contexts = "{c} a{c}b 1{c} .{c}1 '{c}' \"x{c} r{c}'' #{c}\nz {c}; \\{c}"
    assert_same([contexts.format(c=c) for c in picked])


SPECIAL = ["'", '"', "'''", '"""', "\\", "\n", "\r", "\r\n", "#", ";", " ", "\t", ",", ")", "]", "}",
           "(", ".", "..", "1", "0x1f", "2.5", "e3", "_", "a", "rb", "f", "u", "Rb", "bar", "def", "for",
           "*", "**", "=", "/", "<", ">", "-", "!", ":", "@", "$", "é", "²", "Ⅷ", "→", "\u3000", "\x0c",
           "\x85", "\u2028", "\x00", "٣", "if", "None", "match"]


def test_random_texts_of_special_characters():
    rng = random.Random(7)
    texts = ["".join(rng.choice(SPECIAL) for _ in range(rng.randrange(0, 40))) for _ in range(30000)]
    assert_same(texts)


def test_real_files_and_tricky_texts():
    files = sorted(STDLIB.glob("*.py"))[:300]
    texts = [p.read_text("utf-8", "replace") for p in files]
    texts += ["", "   \n\t", "x = f(a,\n b,)", "x = [1, 2,,]", "s = 'open\nx = 1", '"""never closed',
              "'''a''''", "rb'x' bR\"y\" fff'z'", "'a\\'b' '\\", "x = 1 \\\r\ny", "# c\r\nx", "a\\\\\nb",
              "1.x .5j 1..2 ...", "a**=b //= c <<= d >>= e -> f != g := h", "'''\\'''", "x;y;;z"]
    assert_same(texts)


def test_arrow_arrays_of_both_widths_sliced_with_nulls():
    texts = ["def f(x):\n    return x,", None, "é = 'ü'  # ß", "", "a\\\nb", None, "for i in j: pass"]
    want = [regex(t or "") for t in texts]
    for kind in (pa.string(), pa.large_string()):
        arr = pa.array(texts, kind)
        assert native(arr) == want
        assert native(arr.slice(2, 4)) == want[2:6]
        assert native(pa.chunked_array([arr.slice(0, 3), arr.slice(3)])) == want


def test_bad_input_is_a_clear_error():
    table = ngrams._SCAN_TABLE
    with pytest.raises(ValueError, match="invalid UTF-8"):
        codecorpus_scan.scan(b"x = \xff", np.array([0, 5], np.int64), table)
    with pytest.raises(ValueError, match="offsets"):
        codecorpus_scan.scan(b"abc", np.array([0, 9], np.int64), table)
    with pytest.raises(ValueError, match="offsets"):
        codecorpus_scan.scan(b"abc", np.array([2, 1], np.int64), table)


def test_without_the_scanner_the_regex_gives_the_same():
    texts = [p.read_text("utf-8", "replace") for p in sorted(STDLIB.glob("*.py"))[:40]]
    want = native(texts)
    with compiled.disabled():
        assert native(texts) == want
        assert native(pa.array(texts)) == want


def test_compiled_ngram_candidates_equal_the_numpy_ones():
    """The compiled hashing pass gives the numpy pass's filtered positions and hashes, on random
    codes (shorter than n, exactly n, long) and on real files; and the matcher finds the same."""
    prompt = "def f(x):\n    \"\"\"Sum of x.\"\"\"\n"
    solution = "    total = 0\n    for y in x:\n        if y % 3 == 0:\n            total += y * 2\n    return total\n"
    items = ngrams.build_items([{"prompt": prompt, "canonical_solution": solution}], 10, 0.8, 5)
    matcher = ngrams.NgramMatcher(items)
    rng = np.random.default_rng(5)
    cases = [rng.integers(0, ngrams.N_CODES, size, dtype=np.uint8) for size in (0, 3, 9, 10, 11, 5000)]
    texts = [p.read_text("utf-8", "replace") for p in sorted(STDLIB.glob("*.py"))[:30]]
    cases.append(ngrams.batch_codes(texts)[0])
    by_c = [matcher.candidates(c) for c in cases]
    copied = "import os\n\n" + prompt.replace("f(x)", "g(values)") + solution.replace("x:", "values:") + "\nprint(1)\n"
    found = matcher.first_matches(texts + [copied])
    with compiled.disabled():
        for c, (where, hashes) in zip(cases, by_c):
            want_where, want_hashes = matcher.candidates(c)
            assert where.tolist() == want_where.tolist() and hashes.tolist() == want_hashes.tolist()
        assert len(by_c[-1][0]) > 0  # the real files pass the filter somewhere: the test compares something
        assert matcher.first_matches(texts + [copied]) == found and found[-1] is not None
    with pytest.raises(ValueError, match="token code"):
        codecorpus_scan.ngram_candidates(np.array([200] * 12, np.uint8), matcher.table, matcher.maybe, ngrams.N_CODES)
