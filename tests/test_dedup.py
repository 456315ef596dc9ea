"""Near-deduplication: shingles, exact MinHash arithmetic, LSH shape, connected components, and
the stage end to end (clusters, survivors, short files, determinism across partition counts)."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest
from codecorpus.core.config import Config
from codecorpus.core.errors import ConfigError
from codecorpus.stages.dedup import lsh, minhash, shingles
from codecorpus.stages.dedup.components import connected_components
from pyspark.sql import functions as F

# Appended, not prepended: bench/ has scripts named like the jobs (ingest.py, clean.py) that must not shadow them.
sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))
from dedup_reference import jaccard, shingle_strings  # noqa: E402  (bench-only twins of the shingles)

INGEST_DDL = ("id BIGINT, repo_name STRING, path STRING, copies BIGINT, size BIGINT, content STRING, "
              "license STRING, shard STRING, line INT, note STRING")


# ----------------------------------------------------------------------------- synthetic code
def make_source(seed: int, functions: int = 12) -> str:
    """A Python-looking file of ~500 tokens whose identifiers come from a seeded vocabulary."""
    rng = random.Random(seed)
    word = lambda: "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 9)))  # noqa: E731
    lines = [f"# module {word()} {word()} {word()}", f"import {word()}", ""]
    for _ in range(functions):
        args = [word() for _ in range(3)]
        lines.append(f"def {word()}({', '.join(args)}):")
        lines.append(f"    # {word()} {word()} {word()} {word()}")
        for a in args:
            lines.append(f"    {word()} = {a} * {rng.randint(2, 99)} + {word()}")
        lines.append(f"    return {args[0]}")
        lines.append("")
    return "\n".join(lines)


def rename_identifier(src: str) -> str:
    name = src.split("def ")[1].split("(")[0]  # the first function's name, used once
    return src.replace(name, name + "_renamed")


def edit_comment(src: str) -> str:
    lines = src.split("\n")
    i = next(i for i, line in enumerate(lines) if line.strip().startswith("#") and i > 0)
    lines[i] = "    # rewritten comment text here"
    return "\n".join(lines)


def reformat(src: str) -> str:
    return src.replace(", ", ",").replace(" = ", "=").replace("    ", "\t")


def append_function(src: str) -> str:
    return src + "\n\ndef helper_added(value):\n    total = value + 1\n    return total\n"


def test_synthetic_edits_stay_near_duplicates():
    base = make_source(1)
    for edit in (rename_identifier, edit_comment, reformat, append_function):
        sim = jaccard(shingle_strings(base, 5), shingle_strings(edit(base), 5))
        assert sim >= 0.8, (edit.__name__, sim)
    assert jaccard(shingle_strings(base, 5), shingle_strings(make_source(2), 5)) < 0.05


# ----------------------------------------------------------------------------- shingles / minhash
def test_tokens_split_on_non_word_characters():
    assert shingles.tokens("def f(x_1):\n  return x_1+2  # é") == ["def", "f", "x_1", "return", "x_1", "2"]
    assert shingles.tokens(None) == [] and shingles.tokens("") == []


def test_shingle_hashes_count_distinct_ngrams_and_respect_order():
    toks = "a b c d e a b c d e f".split()
    h = shingles.token_hashes(toks)
    assert len(shingles.shingle_hashes(h, 5)) == len(shingle_strings(" ".join(toks), 5)) == 6
    assert len(shingles.shingle_hashes(h, 1)) == 6
    swapped = shingles.token_hashes("b a c d e".split())
    assert not set(shingles.shingle_hashes(swapped, 5)) & set(shingles.shingle_hashes(h, 5))
    # fewer tokens than n: one shingle of all of them
    assert len(shingles.shingle_hashes(shingles.token_hashes(["x", "y"]), 5)) == 1


def test_signatures_are_exact_mersenne_permutations():
    a, b = minhash.permutations(32, seed=7)
    x = np.random.default_rng(3).integers(0, 2**64 - 1, 50, dtype=np.uint64, endpoint=True)
    sigs = minhash.signatures(x, np.array([0, 1, 20]), a, b)  # three files of 1, 19 and 30 shingles
    p = minhash.MERSENNE_61
    for row, (lo, hi) in enumerate([(0, 1), (1, 20), (20, 50)]):
        expected = [min((int(ai) * (int(v) % p) + int(bi)) % p for v in x[lo:hi]) for ai, bi in zip(a, b)]
        assert [int(v) for v in sigs[row]] == expected
    a2, b2 = minhash.permutations(32, seed=7)
    assert (a == a2).all() and (b == b2).all()


def test_signature_agreement_estimates_jaccard():
    a, b = minhash.permutations(512, seed=1)
    rng = np.random.default_rng(5)
    common = rng.integers(0, 2**63, 600, dtype=np.uint64)
    left = np.concatenate([common, rng.integers(0, 2**63, 200, dtype=np.uint64)])
    right = np.concatenate([common, rng.integers(0, 2**63, 200, dtype=np.uint64)])
    sigs = minhash.signatures(np.concatenate([left, right]), np.array([0, len(left)]), a, b)
    estimate = float((sigs[0] == sigs[1]).mean())
    assert abs(estimate - 600 / 1000) < 0.07


def test_short_files_get_no_signature():
    import pyarrow as pa

    params = minhash.MinHashParams(ngram=5, min_tokens=10, num_perm=16, bands=4, rows=4, seed=1)
    contents = pa.array(["x = 1", None, make_source(3), "é" * 5])
    batch = minhash.signature_batch(np.array([1, 2, 3, 4], dtype=np.int64), contents, params,
                                    minhash.permutations(16, 1))
    assert batch.column("id").to_pylist() == [1, 2, 3, 4]
    assert batch.column("bytes").to_pylist() == [5, 0, len(make_source(3)), 10]
    assert batch.column("keys").null_count == 3 and batch.column("sig").is_valid().to_pylist() == [
        False, False, True, False]
    assert len(batch.column("keys")[2]) == 4 and len(batch.column("sig")[2]) == 16


# ----------------------------------------------------------------------------- LSH shape
@pytest.mark.parametrize("threshold,num_perm", [(0.5, 128), (0.7, 256), (0.85, 256), (0.9, 64)])
def test_lsh_shape_matches_datasketch(threshold, num_perm):
    from datasketch.lsh import _optimal_param

    shape = lsh.choose_shape(threshold, num_perm)
    assert (shape.bands, shape.rows) == _optimal_param(threshold, num_perm, 0.5, 0.5)
    assert shape.bands * shape.rows <= num_perm and 0 < shape.fp_area < 0.1 and 0 < shape.fn_area < 0.1


def test_lsh_default_shape_and_override():
    assert (lsh.choose_shape(0.7, 256).bands, lsh.choose_shape(0.7, 256).rows) == (25, 10)
    forced = lsh.shape_for(0.7, 256, bands=16, rows=16)
    assert (forced.bands, forced.rows) == (16, 16)
    assert forced.fn_area > lsh.choose_shape(0.7, 256).fn_area  # fewer bands of more rows miss more


def test_dedup_config_validation_and_preset():
    with pytest.raises(ConfigError, match="bands"):
        Config().replace(**{"dedup.bands": 10})
    with pytest.raises(ConfigError, match="exceeds"):
        Config().replace(**{"dedup.bands": 30, "dedup.rows": 10})
    with pytest.raises(ConfigError, match="preset"):
        Config().replace(**{"dedup.preset": "bigcode"})
    cp = Config().replace(**{"dedup.preset": "codeparrot"}).dedup.resolved()
    assert (cp.ngram, cp.threshold) == (1, 0.85)


# ----------------------------------------------------------------------------- components
def test_connected_components_of_chains_and_stars(spark):
    rng = random.Random(11)
    path = rng.sample(range(1000, 100000), 14)  # a path through scrambled ids
    edges = [(path[i], path[i + 1]) for i in range(len(path) - 1)]
    edges += [(50, 3), (3, 99), (99, 7), (7, 20), (20, 50), (500, 2), (2, 500), (8, 8)]
    df = spark.createDataFrame(edges, "src BIGINT, dst BIGINT")
    comps, rounds = connected_components(df, max_iterations=30)
    got = {r["id"]: r["component"] for r in comps.collect()}
    expected = {n: min(path) for n in path}
    expected.update({n: 3 for n in (50, 3, 99, 7, 20)})
    expected.update({500: 2, 2: 2})
    assert got == expected  # the self-loop (8, 8) is no component
    assert 1 <= rounds < 30


def test_connected_components_gives_up_with_a_clear_error(spark):
    from codecorpus.core.errors import UserError

    df = spark.createDataFrame([(i, i + 1) for i in range(1, 30)], "src BIGINT, dst BIGINT")
    with pytest.raises(UserError, match="max_cc_iterations"):
        connected_components(df, max_iterations=1)


def test_no_edges_no_components(spark):
    comps, rounds = connected_components(spark.createDataFrame([], "src BIGINT, dst BIGINT"))
    assert comps.count() == 0 and rounds == 0


# ----------------------------------------------------------------------------- the stage
def corpus_rows() -> list[tuple]:
    rows = []

    def add(i, content, repo="org/r", path="a.py", copies=1, license="mit", note="n"):
        rows.append((i, repo, path, copies, len(content.encode()), content, license, "s0", i, note))

    base, other = make_source(100), make_source(200)
    add(1, base, license="gpl-3.0", copies=10)           # most copies, but not permissive
    add(2, rename_identifier(base), path="b.py", copies=1)
    add(3, edit_comment(base), repo="org/z", copies=3)
    add(4, reformat(base), repo="org/a", copies=3)       # permissive, 3 copies, smallest repo: kept
    add(5, append_function(base), path="c.py", copies=2)
    add(6, other, repo="x/y")                            # a pair of its own
    add(7, append_function(other), repo="x/y", path="b.py", license="MIT", copies=5)
    for i in range(8, 14):                               # clearly different files
        add(i, make_source(300 + i))
    add(20, "x = 1\n")                                   # short and identical: never collapsed
    add(21, "x = 1\n", path="z.py")
    add(22, "")
    return rows


def run_dedup(spark, tmp_path, partitions: int, **settings):
    from codecorpus.core.registry import run_one

    root = tmp_path / f"run{partitions}"
    spark.createDataFrame(corpus_rows(), INGEST_DDL).write.parquet(str(root / "ingest"))
    cfg = Config().replace(output=str(root), **{"clean.enabled": False, **settings})
    old = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
    try:
        counts = run_one(spark, cfg, "dedup", force=True)
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", old)
    kept = spark.read.parquet(str(root / "dedup"))
    removed = spark.read.parquet(str(root / "dedup_removed"))
    return counts, kept, removed


@pytest.fixture(scope="module")
def two_runs(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dedup")
    return run_dedup(spark, tmp, 3), run_dedup(spark, tmp, 11)


def test_stage_removes_near_copies_and_keeps_the_best_ranked(two_runs):
    counts, kept, removed = two_runs[0]
    assert sorted(r["id"] for r in kept.collect()) == [4, 7, 8, 9, 10, 11, 12, 13, 20, 21, 22]
    by_id = {r["id"]: r for r in removed.collect()}
    assert sorted(by_id) == [1, 2, 3, 5, 6]
    assert {r["kept_id"] for i, r in by_id.items() if i != 6} == {4}
    assert by_id[6]["kept_id"] == 7  # "MIT" counts as permissive, and 5 copies beat 1
    assert {r["cluster"] for i, r in by_id.items() if i != 6} == {1} and by_id[6]["cluster"] == 6
    assert by_id[1]["cluster_size"] == 5
    assert counts.rows_in == 16 and counts.rows_out == 11 and counts.dropped == {"near_duplicate": 5}
    ex = counts.extra
    assert (ex["bands"], ex["rows"]) == (25, 10) and ex["files_too_short"] == 3
    assert ex["clusters"] == 2 and ex["cluster_sizes"] == [[2, 1], [5, 1]]
    assert ex["bytes_removed"] == sum(len(r["content"].encode()) for r in by_id.values())


def test_stage_passes_every_column_through(two_runs):
    _, kept, removed = two_runs[0]
    assert kept.columns == [c.split()[0] for c in INGEST_DDL.split(", ")]
    assert set(removed.columns) == set(kept.columns) | {"cluster", "kept_id", "cluster_size"}
    assert kept.where(F.col("id") == 7).first()["note"] == "n"


def test_stage_is_identical_across_partition_counts(two_runs):
    from pyspark.testing import assertDataFrameEqual

    (c1, kept1, removed1), (c2, kept2, removed2) = two_runs
    assertDataFrameEqual(kept1, kept2)
    assertDataFrameEqual(removed1, removed2)
    strip = lambda c: {**c.to_dict(), "seconds": 0}  # noqa: E731
    assert strip(c1) == strip(c2)


def test_stage_without_verification_and_codeparrot_preset(spark, tmp_path):
    counts, kept, _ = run_dedup(spark, tmp_path, 4, **{"dedup.verify": False, "dedup.preset": "codeparrot"})
    assert counts.extra["ngram"] == 1 and counts.extra["threshold"] == 0.85
    assert counts.extra["verified_edges"] == counts.extra["candidate_edges"]
    assert {4, 7, 20, 21}.issubset({r["id"] for r in kept.collect()})
    assert counts.rows_out + counts.dropped["near_duplicate"] == 16


def test_cluster_size_bins_and_report_section(two_runs, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from codecorpus.report.dedup import section as report_section
    from codecorpus.stages.dedup.stage import size_histogram
    from codecorpus.report.render import ReportContext

    assert size_histogram([(2, 10), (3, 4), (4, 2), (5, 1), (9, 1), (17, 2)]) == [
        {"bin": "2", "clusters": 10, "files": 20}, {"bin": "3-4", "clusters": 6, "files": 20},
        {"bin": "5-8", "clusters": 1, "files": 5}, {"bin": "9-16", "clusters": 1, "files": 9},
        {"bin": "17-32", "clusters": 2, "files": 34}]
    counts = two_runs[0][0]
    ctx = ReportContext(cfg=Config(), root=str(tmp_path), folder=str(tmp_path), counts={"dedup": counts})
    html = report_section(ctx)
    assert "dedup_cluster_sizes.png" in html and (tmp_path / "dedup_cluster_sizes.png").stat().st_size > 0
    assert "files removed" in html and "5 (31.2%)" in html
    assert report_section(ReportContext(cfg=Config(), root=str(tmp_path), folder=str(tmp_path))) is None


def test_stage_rejects_repeated_ids(spark, tmp_path):
    from codecorpus.core.errors import UserError
    from codecorpus.core.registry import run_one

    rows = corpus_rows()[:2]
    rows[1] = (rows[0][0],) + rows[1][1:]
    spark.createDataFrame(rows, INGEST_DDL).write.parquet(str(tmp_path / "ingest"))
    cfg = Config().replace(output=str(tmp_path), **{"clean.enabled": False})
    with pytest.raises(UserError, match="ids must be unique"):
        run_one(spark, cfg, "dedup", force=True)
