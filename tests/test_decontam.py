"""Decontamination by normalised token n-grams: the tokenizer's normalisation, the fixed hashes,
the benchmark items, a renamed and a reformatted HumanEval solution planted in a real file (found
by n-grams, missed by exact substrings), real files left alone, the copy-in-one-stretch rule,
the config, the Spark pass with the method per file, and the stage's counts by method."""
from __future__ import annotations

import hashlib
import re
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from codecorpus.core.config import CleanConfig, ConfigError, load_config
from codecorpus.io.benchmarks import records
from codecorpus.stages.clean import ngrams
from codecorpus.stages.clean.decontam import Matcher
from codecorpus.stages.clean.filters import reasons
from codecorpus.stages.clean.stage import load_inputs, load_needles, load_ngrams
from codecorpus.stages.clean.transform import clean

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SCHEMA = ("id BIGINT, repo_name STRING, path STRING, copies BIGINT, size BIGINT, content STRING, "
          "license STRING, shard STRING, line INT")
STRICT = {"config_or_test_prob": 1.0, "no_keywords_prob": 1.0}
RENAMES = {"has_close_elements": "any_near", "numbers": "values", "threshold": "eps", "idx2": "j",
           "elem2": "b", "idx": "i", "elem": "a", "distance": "gap"}


def humaneval_0() -> str:
    rec = records("humaneval")[0]
    return rec["prompt"] + rec["canonical_solution"]


def renamed() -> str:
    """HumanEval/0 with every name it defines renamed consistently (in the docstring too)."""
    return re.sub(r"\b(" + "|".join(RENAMES) + r")\b", lambda m: RENAMES[m.group(1)], humaneval_0())


def reformatted() -> str:
    """HumanEval/0 as another formatter would write it: exploded signature with a trailing
    comma, no blanks around operators, 2-space indents, a comment, a joined line."""
    prompt = records("humaneval")[0]["prompt"]
    doc = prompt[prompt.index('"""'):].strip()
    return ("from typing import List\n"
            "def has_close_elements(\n    numbers: List[float],\n    threshold: float,\n) -> bool:\n"
            f"  {doc}\n"
            "  for idx,elem in enumerate(numbers):  # every pair\n"
            "    for idx2,elem2 in enumerate(numbers):\n"
            "      if idx!=idx2:\n"
            "        distance=abs(elem-elem2)\n"
            "        if distance<threshold: return True\n"
            "  return False\n")


def host() -> str:
    return (STDLIB / "json" / "decoder.py").read_text()


def planted(code: str) -> str:
    """`code` between two top-level statements of a real file."""
    text = host()
    at = text.index("\nclass JSONDecoder")
    return text[:at] + "\n\n" + code + "\n" + text[at:]


@pytest.fixture(scope="module")
def matchers():
    c = CleanConfig()
    needles, _ = load_needles(c)
    items, _ = load_ngrams(c)
    return Matcher(needles), ngrams.NgramMatcher(items), items


def test_codes_ignore_layout_comments_and_names():
    codes = ngrams.token_codes
    same = ["x = f(a, b)", "x=f( a,b )", "x = f(a,\n      b,)  # trailing comma", "y = g(c, d);",
            "x = \\\n f(a, b)"]
    assert all(codes(s).tolist() == codes(same[0]).tolist() for s in same)
    c = ngrams.CODES
    assert codes("if x: return 'a' + 1.5e3").tolist() == [c["if"], ngrams.ID, c[":"], c["return"], ngrams.STR,
                                                            c["+"], ngrams.NUM]
    assert codes('rb"x" f"{y}" """doc\n"""').tolist() == [ngrams.STR] * 3
    assert codes("match = case = type = _").tolist() == [ngrams.ID, c["="]] * 3 + [ngrams.ID]
    assert codes("a ** b // c -> d ... e").tolist()[1::2] == [c["**"], c["//"], c["->"], c["..."]]
    # Anything at all tokenizes: an unterminated string, stray characters, binary junk.
    for junk in ("s = 'open\nx = 1", '"""never closed', "$ ? ` \x00\xff", "", "   \n\t"):
        assert codes(junk).dtype == np.uint8


def test_ngram_hashes_are_fixed_tabulation_hashes():
    table = ngrams._table(3)
    assert table.shape == (3, ngrams.N_CODES)
    assert int(table[1][7]) == int.from_bytes(hashlib.blake2b(b"1:7", digest_size=8).digest(), "little")
    codes = np.array([5, 6, 7, 8], np.uint8)
    want = [int(table[0][a]) ^ int(table[1][b]) ^ int(table[2][c]) for a, b, c in ((5, 6, 7), (6, 7, 8))]
    assert ngrams.ngram_hashes(codes, table).tolist() == want
    assert len(ngrams.ngram_hashes(codes[:2], table)) == 0


def test_benchmark_items_and_their_floor():
    c = CleanConfig()
    items, info = load_ngrams(c)
    assert info["items"] == len(items) == len(items.names) == len(items.spans)
    assert "HumanEval/0 prompt+solution" in items.names and "HumanEval/0 canonical_solution" in items.names
    assert info["skipped_short"] > 0 and not any(n.startswith("HumanEval/53 ") for n in items.names)  # x + y
    assert all(len(g) >= c.decontam_min_ngrams for g in items.items)
    own = ngrams.build_items([{"text": humaneval_0()}, {"text": humaneval_0()}, {"text": "x = 1"}], 10, 0.8, 20)
    assert own.names == ("0 text",) and own.skipped_short == 1  # identical sets are one item
    both = ngrams.merge([own, ngrams.build_items([{"code": renamed()}], 10, 0.8, 20, prefix="b:")])
    assert both.names == ("0 text", "b:0 code") and both.items[0] == both.items[1]


def test_renamed_and_reformatted_copies_are_found_by_ngrams_only(matchers):
    exact, ngram, items = matchers
    name = {k: items.names[k] for k in range(len(items))}
    verbatim = planted(humaneval_0())
    assert exact.contains_any(verbatim) and name[ngram.first_match(verbatim)].startswith("HumanEval/0 ")
    for variant in (renamed(), reformatted()):
        compile(variant, "variant", "exec")  # still Python
        text = planted(variant)
        assert not exact.contains_any(text)
        assert name[ngram.first_match(text)].startswith("HumanEval/0 ")


def test_real_files_are_not_flagged(matchers):
    exact, ngram, _ = matchers
    files = [STDLIB / p for p in ("json/decoder.py", "json/encoder.py", "textwrap.py", "heapq.py", "bisect.py",
                                  "difflib.py", "statistics.py", "fractions.py", "string.py", "shlex.py")]
    for path in files:
        text = path.read_text()
        assert ngram.first_match(text) is None and not exact.contains_any(text), path


def test_a_copy_must_be_one_stretch_of_the_file(matchers):
    _, ngram, _ = matchers
    lines = renamed().splitlines(keepends=True)
    # After the inner loop's header: neither part holds 80% of the function or of the solution.
    half = next(i for i, line in enumerate(lines) if "for j, b in" in line) + 1
    apart = host()[:20000]  # thousands of tokens between the parts
    spread = "".join(lines[:half]) + apart + "".join(lines[half:])
    assert ngram.first_match("".join(lines[:half]) + "".join(lines[half:])) is not None
    assert ngram.first_match(spread) is None


def test_config_of_the_methods():
    inp, info = load_inputs(CleanConfig(decontam_methods=["exact"]))
    assert inp.ngrams is None and inp.needles and info["decontamination"]["methods"] == ["exact"]
    inp, info = load_inputs(CleanConfig(decontam_methods=["ngram"]))
    assert not inp.needles and len(inp.ngrams) > 100 and "contaminated" in reasons(inp)
    assert info["decontamination"]["ngram"]["n"] == 10
    inp, _ = load_inputs(CleanConfig(decontam_methods=[]))
    assert "contaminated" not in reasons(inp)
    assert load_config(overrides=["clean.decontam_methods=ngram"]).clean.decontam_methods == ["ngram"]
    for bad in ("clean.decontam_methods=fuzzy", "clean.decontam_overlap=0", "clean.decontam_overlap=1.5",
                "clean.decontam_ngram=0", "clean.decontam_min_ngrams=0"):
        with pytest.raises(ConfigError, match=bad.split("=")[0].split(".")[1]):
            load_config(overrides=[bad])


def _rows(spark, contents):
    rows = [(i, f"r/{i}", "f.py", 1, len(t.encode()), t, "mit", "s", i) for i, t in enumerate(contents)]
    return spark.createDataFrame(rows, SCHEMA)


def test_spark_pass_names_the_methods_that_found_each_file(spark):
    inp, _ = load_inputs(CleanConfig(**STRICT))
    contents = [planted(humaneval_0()), planted(renamed()), planted(reformatted()), host()]
    out = {r["id"]: r for r in clean(_rows(spark, contents), inp).collect()}
    assert [out[i]["drop_reason"] for i in range(4)] == ["contaminated"] * 3 + [None]
    assert [out[i]["_contam_method"] for i in range(4)] == ["exact+ngram", "ngram", "ngram", None]
    exact_only, _ = load_inputs(CleanConfig(decontam_methods=["exact"], **STRICT))
    out = {r["id"]: r["drop_reason"] for r in clean(_rows(spark, contents), exact_only).collect()}
    assert out == {0: "contaminated", 1: None, 2: None, 3: None}


def test_stage_counts_contaminated_files_by_method(spark, tmp_path):
    from codecorpus.core.registry import run_one
    from codecorpus.report.clean import section
    from codecorpus.report.render import ReportContext

    root = tmp_path / "out"
    _rows(spark, [planted(humaneval_0()), planted(renamed()), host()]).write.parquet(str(root / "ingest"))
    cfg = load_config(overrides=[f"output={root}"])
    counts = run_one(spark, cfg, "clean")
    assert counts.dropped["contaminated"] == 2 and counts.rows_out == 1
    dc = counts.extra["decontamination"]
    assert dc["methods"] == ["exact", "ngram"] and dc["files"] == {"exact": 1, "ngram": 2, "ngram_only": 1}
    assert dc["ngram"]["items"] > 100 and dc["strings"] > 164
    folder = tmp_path / "report"
    folder.mkdir()
    html = section(ReportContext(cfg=cfg, root=str(root), folder=str(folder), counts={"clean": counts}))
    assert "2 files dropped: 1 found by exact substrings, 2 by n-grams (1 by n-grams only)" in html
