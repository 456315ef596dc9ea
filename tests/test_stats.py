"""Stats: the corpus figures of the ingested rows, and that the stats and clean stages count
the same exact duplicates (one key, `clean.exact.stripped_hash`)."""
from __future__ import annotations

import json

from codecorpus.core.config import load_config
from codecorpus.core.registry import run_one

SCHEMA = ("id BIGINT, repo_name STRING, path STRING, copies BIGINT, size BIGINT, content STRING, "
          "license STRING, shard STRING, line INT")
# Equal once whitespace is removed; the second has an ideographic space (U+3000) and a no-break
# space (U+00A0), which Java's `\s` would not remove but Python's str.isspace() set does.
PAIR = ["x = 1\ny = 2\n", "x =\u30001\ny =\xa02\n"]


def write_ingest(spark, root, contents: list[str]) -> None:
    rows = [(i, f"r/{i}", "f.py", 1, len(t.encode()), t, "mit", "s", i) for i, t in enumerate(contents)]
    spark.createDataFrame(rows, SCHEMA).write.parquet(str(root / "ingest"))


def test_unicode_whitespace_variants_are_one_duplicate_in_stats_and_clean(spark, tmp_path):
    root = tmp_path / "out"
    write_ingest(spark, root, PAIR)
    cfg = load_config(overrides=[f"output={root}"])
    run_one(spark, cfg, "stats")
    stats = json.loads((root / "stats" / "stats.json").read_text())
    dup = stats["exact_duplicates"]
    assert (stats["files"], dup["distinct_contents"], dup["duplicate_files"], dup["largest_group"]) == (2, 1, 1, 2)
    assert dup["duplicate_bytes"] == round(sum(len(t.encode()) for t in PAIR) / 2)

    counts = run_one(spark, cfg, "clean")
    assert counts.dropped["exact_duplicate"] == 1
    assert counts.extra["duplicates"]["groups_with_copies"] == 1


def test_corpus_figures(spark, tmp_path):
    root = tmp_path / "out"
    contents = ["", "a = 1\n", "a = 1\n", "b" * 150 + "\n"]
    write_ingest(spark, root, contents)
    counts = run_one(spark, load_config(overrides=[f"output={root}", "stats.top_n=2"]), "stats")
    stats = json.loads((root / "stats" / "stats.json").read_text())
    assert (counts.rows_in, counts.rows_out) == (4, 4) and counts.extra["files"] == 4
    assert (stats["files"], stats["bytes"], stats["repos"], stats["empty_files"]) == (4, 163, 4, 1)
    assert stats["size_bytes"]["max"] == 151 and stats["exact_duplicates"]["duplicate_files"] == 1
    assert stats["licenses"] == [{"license": "mit", "files": 4, "bytes": 163}]
    assert len(stats["top_repos"]) == 2 and sum(h["files"] for h in stats["size_histogram"]) == 4
    assert stats["size_histogram"][0] == {"lo": 0, "hi": 1, "files": 1}  # the empty file
    assert "ingest" not in stats  # no ingest marker under this root

    from codecorpus.report.render import ReportContext
    from codecorpus.report.stats import section

    folder = tmp_path / "report"
    folder.mkdir()
    html = section(ReportContext(cfg=load_config(overrides=[f"output={root}"]), root=str(root), folder=str(folder)))
    for name in ("size_histogram", "licenses", "top_repos", "duplicate_share"):
        assert f'<img src="{name}.png"' in html and (folder / f"{name}.png").stat().st_size > 1000
    assert "Exact duplicates: 1 files (25.0%)" in html
