"""Opt-out: the list's syntax, the glob semantics (in Spark SQL, and the same regex in Python),
the filter's place (after `license`, before the content filters), the exact-duplicate
representative, the stage's counts, funnel and report line, and one-line errors."""
from __future__ import annotations

import hashlib
import re

import pytest
from codecorpus.core.config import CleanConfig, load_config
from codecorpus.core.errors import UserError
from codecorpus.stages.clean import opt_out
from codecorpus.stages.clean.filters import Inputs
from codecorpus.stages.clean.transform import clean
from pyspark.sql import functions as F

SCHEMA = ("id BIGINT, repo_name STRING, path STRING, copies BIGINT, size BIGINT, content STRING, "
          "license STRING, shard STRING, line INT")
# Passes every filter (a keyword, five "=", short lines); the tag makes each copy distinct.
GOOD = "def add(a, b):\n    total = a + b\n    x1 = 1\n    x2 = 2\n    x3 = 3\n    x4 = 4\n    return total\n"

LIST = """\
# Opt-out requests, one a line.
Acme/App
  acme/lib/tests/*.py
acme/lib/**/conftest.py
acme/lib/docs/
acme/lib/data/file?.[ct]sv
acme/lib/src/[!_]*.py
acme/lib/odd/a**b
acme/lib/odd/x[y
acme/lib/odd/c++ (1).py
we.ird/re+po/a.py
acme/app/ignored/*.py

bare
"""


def good(tag: str) -> str:
    return f"# {tag}\n{GOOD}"


def rows_df(spark, items):
    """items: (id, repo_name, path[, content[, license]])."""
    rows = []
    for fid, repo, path, *rest in items:
        content = rest[0] if rest else good(f"{repo}/{path}")
        rows.append((fid, repo, path, 1, len(content.encode()), content, rest[1] if len(rest) > 1 else "mit", "s", fid))
    return spark.createDataFrame(rows, SCHEMA)


def test_list_syntax_comments_case_and_whole_repos():
    o = opt_out.parse(LIST, "optout.txt")
    assert o.repos == ("acme/app", "bare")  # lower-cased; "acme/app/ignored/*.py" is implied
    assert dict(o.globs)["acme/lib"] == ("**/conftest.py", "data/file?.[ct]sv", "docs/", "odd/a**b",
                                         "odd/c++ (1).py", "odd/x[y", "src/[!_]*.py", "tests/*.py")
    assert "acme/app" not in dict(o.globs) and o.lines == len(LIST.splitlines()) and o.n_globs == 9
    assert opt_out.parse("acme/app/\n", "f").repos == ("acme/app",)
    for bad in ("acme/*/x.py", "/acme/app", "acme//x", "acme/ap?"):
        with pytest.raises(UserError, match=r"^f line 2: .*expected owner/name"):
            opt_out.parse("# ok\n" + bad + "\n", "f")


CASES = [  # (repo_name, path, opted out)
    ("acme/app", "anything/at/all.py", True),
    ("ACME/app", "x.py", True),             # repository names ignore case
    ("acme/apps", "x.py", False),
    ("acme/lib", "tests/test_a.py", True),
    ("acme/lib", "tests/unit/test_a.py", False),  # "*" stays in one directory
    ("acme/lib", "Tests/test_a.py", False),       # paths are case-sensitive
    ("acme/lib", "tests/test_a.pyc", False),      # the whole path must match
    ("acme/lib", "conftest.py", True),            # "**/" is zero or more directories
    ("acme/lib", "a/b/conftest.py", True),
    ("acme/lib", "a/b/my_conftest.py", False),
    ("acme/lib", "docs/index.md", True),          # a trailing "/" is everything below
    ("acme/lib", "docs", False),
    ("acme/lib", "data/file1.csv", True),
    ("acme/lib", "data/file1.psv", False),
    ("acme/lib", "data/file12.csv", False),       # "?" is one character
    ("acme/lib", "src/mod.py", True),
    ("acme/lib", "src/_private.py", False),       # [!_]
    ("acme/lib", "odd/aXYb", True),               # "**" inside a component is "*"
    ("acme/lib", "odd/aX/Yb", False),
    ("acme/lib", "odd/x[y", True),                # an unclosed "[" is literal
    ("acme/lib", "odd/c++ (1).py", True),         # regex characters are literal
    ("acme/lib", "odd/c+ (1).py", False),
    ("acme/lib", "odd/c++ (1)Xpy", False),
    ("we.ird/re+po", "a.py", True),
    ("weXird/re+po", "a.py", False),
    ("other/repo", "tests/test_a.py", False),
    ("bare", "x/y.py", True),                     # a repository without an owner, whole
    ("acme/lib", "tests/a.py\n", False),          # "$" would match before a final line break
    (None, "x.py", False),
    ("acme/lib", None, False),
]


def test_globs_in_spark_sql_and_the_same_regex_in_python(spark):
    o = opt_out.parse(LIST, "optout.txt")
    df = spark.createDataFrame([(i, r, p) for i, (r, p, _) in enumerate(CASES)], "i INT, repo_name STRING, path STRING")
    got = df.select("i", opt_out.opted_out(o, F.col("repo_name"), F.col("path")).alias("out")).orderBy("i").collect()
    assert [(r, p, g["out"]) for (r, p, _), g in zip(CASES, got)] == CASES
    python = re.compile(opt_out.globs_regex(o).replace("\\z", "\\Z"))
    for repo, path, want in CASES:
        if repo is not None and path is not None:
            found = repo.lower() in o.repos or bool(python.match(f"{repo.lower()}\x00{path}"))
            assert found == want, (repo, path)


def test_opt_out_is_a_filter_after_license_and_before_the_content_filters(spark):
    o = opt_out.parse("acme/app\n", "f")
    items = [(1, "acme/app", "a.py"), (2, "acme/app", "b.py", good("gpl"), "gpl-3.0"),
             (3, "acme/app", "c.py", "# autogenerated\n" + GOOD), (4, "other/x", "a.py")]
    c = CleanConfig(decontaminate=[])
    out = {r["id"]: r["drop_reason"] for r in clean(rows_df(spark, items), Inputs(c, opt_out=o)).collect()}
    assert out == {1: "opt_out", 2: "license", 3: "opt_out", 4: None}
    without = {r["id"]: r["drop_reason"] for r in clean(rows_df(spark, items), Inputs(c)).collect()}
    assert without == {1: None, 2: "license", 3: "autogenerated", 4: None}


def test_a_duplicate_group_keeps_a_copy_that_is_not_opted_out(spark):
    shared, only_opted = good("shared"), good("only opted")
    items = [(1, "a/a", "f.py", shared), (2, "b/b", "f.py", shared), (3, "c/c", "f.py", shared, "gpl-3.0"),
             (4, "a/a", "g.py", only_opted), (5, "a/b", "g.py", only_opted)]
    o = opt_out.parse("a/a\na/b\n", "f")
    out = {r["id"]: r for r in clean(rows_df(spark, items), Inputs(CleanConfig(decontaminate=[]), opt_out=o)).collect()}
    # a/a ranks first by name, but is opted out: the allowed copy in b/b represents the group.
    assert {i: out[i]["drop_reason"] for i in (1, 2, 3)} == {1: "exact_duplicate", 2: None, 3: "exact_duplicate"}
    assert out[2]["dup_group_size"] == 3
    # Every copy opted out: the group is lost, counted once as opt_out.
    assert {i: out[i]["drop_reason"] for i in (4, 5)} == {4: "opt_out", 5: "exact_duplicate"}


def test_stage_counts_the_list_in_the_funnel_and_the_report(spark, tmp_path):
    from codecorpus.core.registry import run_one
    from codecorpus.report.clean import section
    from codecorpus.report.render import ReportContext

    root = tmp_path / "out"
    items = [(1, "acme/app", "a.py"), (2, "acme/lib", "tests/t.py"), (3, "acme/lib", "src/m.py"),
             (4, "acme/lib", "src/n.py")]
    rows_df(spark, items).write.parquet(str(root / "ingest"))
    listing = tmp_path / "optout.txt"
    listing.write_text("# requests\nacme/app\nacme/lib/tests/*.py\n")
    cfg = load_config(overrides=[f"output={root}", f"clean.opt_out_file={listing}"])
    counts = run_one(spark, cfg, "clean")
    assert counts.rows_out == 2 and counts.dropped["opt_out"] == 2
    assert counts.extra["reasons"][:3] == ["exact_duplicate", "license", "opt_out"]
    steps = {f["step"]: f["rows"] for f in counts.extra["funnel"]}
    assert steps["opt_out"] == 2 and steps["out"] == 2
    assert counts.extra["opt_out"] == {"file": str(listing), "lines": 3, "repos": 1, "globs": 1,
                                       "sha256": hashlib.sha256(listing.read_bytes()).hexdigest()}
    rejected = {r["id"]: r["drop_reason"] for r in spark.read.parquet(str(root / "rejects")).collect()}
    assert rejected == {1: "opt_out", 2: "opt_out"}
    folder = tmp_path / "report"
    folder.mkdir()
    html = section(ReportContext(cfg=cfg, root=str(root), folder=str(folder), counts={"clean": counts}))
    assert "Opt-out list" in html and "1 repositories, 1 path globs): 2 files dropped" in html
    # The dataset card names the list by its content.
    assert run_one(spark, cfg.replace(**{"dedup.enabled": False}), "split").rows_out == 2
    card = (root / "dataset" / "README.md").read_text()
    assert f"SHA-256 `{hashlib.sha256(listing.read_bytes()).hexdigest()}`, 3 entries" in card
    # Without a list: no opt_out reason at all, and the card learns that no list was used.
    counts = run_one(spark, cfg.replace(**{"clean.opt_out_file": ""}), "clean", force=True)
    assert "opt_out" not in counts.dropped and counts.extra["opt_out"] == {"file": None}


def test_a_missing_or_unreadable_list_is_a_one_line_error(spark, tmp_path, capsys):
    from clean import main  # jobs/clean.py

    root = tmp_path / "out"
    rows_df(spark, [(1, "acme/app", "a.py")]).write.parquet(str(root / "ingest"))
    missing = tmp_path / "nowhere.txt"
    assert main(["--set", f"output={root}", "--set", f"clean.opt_out_file={missing}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: clean.opt_out_file: cannot read {missing}: no such file or directory"
    binary = tmp_path / "list.bin"
    binary.write_bytes(b"acme/\xff\xfe\n")
    assert main(["--set", f"output={root}", "--set", f"clean.opt_out_file={binary}"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(f"cannot read {binary}: not UTF-8 text")
    bad = tmp_path / "bad.txt"
    bad.write_text("acme/*\n")
    assert main(["--set", f"output={root}", "--set", f"clean.opt_out_file={bad}"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(f"error: {bad} line 1: 'acme/*'")
