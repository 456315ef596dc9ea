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
from codecorpus.stages.dedup.components import connected_components, label_components
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


def _texts() -> list:
    """Files whose bytes meet at word characters, nulls, empties, non-ASCII, and tokens of 8, 9,
    16, 17 and 70 bytes (the 8-byte chunks of a token value)."""
    return ["alpha beta", "gamma delta(x)", None, "", "epsilon", "é ü_x ß", "a" * 8 + " " + "a" * 9,
            "b" * 16 + "+" + "b" * 17 + "_" + "c" * 70, make_source(4), "tail_without_newline", "x",
            "zz" * 40 + "y", make_source(5) + "\n" * 3]


@pytest.mark.parametrize("ngram", [1, 3, 5, 12])
def test_batch_shingles_are_the_reference_shingle_sets(ngram):
    import pyarrow as pa

    texts = _texts()
    for chunk in (shingles.CHUNK_BYTES, 16, 1):  # whole batch; chunks of one or a few files
        sh = shingles.batch_shingles(pa.array(texts), ngram, chunk_bytes=chunk)
        assert len(sh.offsets) == len(texts) + 1 and sh.token_counts.tolist() == [len(shingles.tokens(t)) for t in texts]
        for j, text in enumerate(texts):
            got = set(sh.hashes[sh.offsets[j]:sh.offsets[j + 1]].tolist())
            per_file = set(shingles.shingle_hashes(shingles.token_hashes(shingles.tokens(text)), ngram).tolist())
            assert got == per_file and len(got) == len(shingle_strings(text, ngram)), (chunk, j)


def test_token_values_tell_long_tokens_apart():
    toks = ["a" * 8, "a" * 9, "a" * 16, "a" * 17, "a" * 8 + "b" + "a" * 7, "a" * 9 + "b" + "a" * 7,
            "x" * 64 + "y", "x" * 64 + "z", "x" * 65]
    values = shingles.token_hashes(toks)
    assert len(set(values.tolist())) == len(toks)
    assert shingles.token_hashes(["abc"])[0] == int.from_bytes(b"abc", "little")  # short: its own bytes


def test_signatures_are_minhash_of_the_set_whatever_the_batch():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2**64 - 1, 400, dtype=np.uint64, endpoint=True)
    whole = minhash.signatures(x, np.array([0, 400]), 64, seed=7)
    singles = minhash.signatures(x, np.arange(401), 64, seed=7)
    assert whole.dtype == np.uint32 and whole.shape == (1, 64)
    assert (whole[0] == singles.min(axis=0)).all()  # min over elements: the set, nothing sampled
    shuffled = np.concatenate([rng.permutation(x), x[:50]])  # order and repeats do not matter
    assert (minhash.signatures(shuffled, np.array([0, 450]), 64, seed=7) == whole).all()
    # The same file among others, or alone: the same row (outputs never depend on batching).
    mixed = minhash.signatures(np.concatenate([x[:10], x, x[5:9]]), np.array([0, 10, 410, 414]), 64, seed=7)
    assert (mixed[1] == whole[0]).all()
    assert (minhash.signatures(x, np.array([0, 0, 400]), 64, seed=7)[0] == 2**32 - 1).all()  # no shingles
    assert not (minhash.signatures(x, np.array([0, 400]), 64, seed=8) == whole).all()


def test_signature_agreement_estimates_jaccard():
    rng = np.random.default_rng(5)
    common = rng.integers(0, 2**63, 600, dtype=np.uint64)
    left = np.concatenate([common, rng.integers(0, 2**63, 200, dtype=np.uint64)])
    right = np.concatenate([common, rng.integers(0, 2**63, 200, dtype=np.uint64)])
    sigs = minhash.signatures(np.concatenate([left, right]), np.array([0, len(left), len(left) + len(right)]), 512, 1)
    estimate = float((sigs[0] == sigs[1]).mean())
    assert abs(estimate - 600 / 1000) < 0.07


def test_short_files_get_no_signature():
    import pyarrow as pa

    params = minhash.MinHashParams(ngram=5, min_tokens=10, num_perm=16, bands=4, rows=4, seed=1)
    contents = pa.array(["x = 1", None, make_source(3), "é" * 5])
    batch = minhash.signature_batch(np.array([1, 2, 3, 4], dtype=np.int64), contents, params)
    assert batch.column("id").to_pylist() == [1, 2, 3, 4]
    assert batch.column("bytes").to_pylist() == [5, 0, len(make_source(3)), 10]
    assert batch.column("keys").null_count == 3 and batch.column("sig").is_valid().to_pylist() == [
        False, False, True, False]
    assert len(batch.column("keys")[2]) == 4 and len(batch.column("sig")[2]) == 16
    # A file's row does not depend on its neighbours in the batch.
    alone = minhash.signature_batch(np.array([3], dtype=np.int64), pa.array([make_source(3)]), params)
    assert alone.column("keys")[0] == batch.column("keys")[2] and alone.column("sig")[0] == batch.column("sig")[2]


def test_band_keys_follow_the_bands():
    sigs = np.random.default_rng(1).integers(0, 2**32, (3, 12), dtype=np.uint64).astype(np.uint32)
    sigs[1, :4] = sigs[0, :4]  # file 1 shares band 0 with file 0, nothing else
    sigs[2, 4:8] = sigs[0, :4]  # file 2 holds file 0's band-0 values in band 1
    keys = minhash.band_keys(sigs, 3, 4)
    assert keys.shape == (3, 3) and keys[0, 0] == keys[1, 0] and (keys[0, 1:] != keys[1, 1:]).all()
    assert keys[2, 1] != keys[0, 0]  # same values, different band: a different bucket


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
    nodes, comp, rounds = label_components(np.array([8]), np.array([8]))  # a self-loop only
    assert len(nodes) == len(comp) == rounds == 0


@pytest.mark.parametrize("seed", [1, 2])
def test_driver_components_agree_with_the_spark_rounds(spark, seed):
    rng = random.Random(seed)
    ids = rng.sample(range(1, 10**9), 400)
    # Chains, stars and cycles over scrambled ids, plus random chords and repeated edges.
    edges = [(ids[i], ids[i + 1]) for i in range(0, 120)] + [(ids[150], ids[j]) for j in range(151, 200)]
    edges += [(ids[j], ids[j + 1]) for j in range(200, 260)] + [(ids[259], ids[200])]
    edges += [(rng.choice(ids[260:]), rng.choice(ids[260:])) for _ in range(90)] + edges[:10]
    nodes, comp, _ = label_components(np.array([e[0] for e in edges]), np.array([e[1] for e in edges]))
    spark_comps, _ = connected_components(spark.createDataFrame(edges, "src BIGINT, dst BIGINT"))
    assert dict(zip(nodes.tolist(), comp.tolist())) == {r["id"]: r["component"] for r in spark_comps.collect()}


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


def run_dedup(spark, tmp_path, partitions: int, input_files: int | None = None, rows=None, **settings):
    from codecorpus.core.registry import run_one

    root = tmp_path / f"run{partitions}-{input_files}"
    df = spark.createDataFrame(rows or corpus_rows(), INGEST_DDL)
    (df.repartition(input_files) if input_files else df).write.parquet(str(root / "ingest"))
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


def _near_copy_rows() -> list[tuple]:
    """30 files and, for 20 of them, a copy with a share of its functions rewritten: exact
    Jaccard similarities spread from about 0.3 to 1 around the 0.7 threshold."""
    rows = []
    for i in range(30):
        src = make_source(1000 + i, functions=16)
        rows.append((i + 1, "org/r", f"f{i}.py", 1, len(src), src, "mit", "s0", i, "n"))
        if i < 20:
            parts = src.split("\ndef ")
            fresh = make_source(5000 + i, functions=16).split("\ndef ")
            k = i % 10  # functions replaced: 0 (an exact copy of the tokens) to 9 of 16
            copy = "\ndef ".join(parts[:len(parts) - k] + fresh[1:k + 1]).replace("    ", "  ")
            rows.append((100 + i, "org/c", f"f{i}.py", 1, len(copy), copy, "mit", "s0", i, "n"))
    return rows


def test_stage_is_identical_across_input_layouts_and_component_paths(spark, tmp_path):
    """The same rows read as 1 or 7 input files, in 3 or 11 shuffle partitions, with components
    labelled on the driver or in Spark rounds: the same kept and removed files, byte for byte."""
    from pyspark.testing import assertDataFrameEqual

    rows = _near_copy_rows()
    runs = [run_dedup(spark, tmp_path, 3, input_files=1, rows=rows),
            run_dedup(spark, tmp_path, 11, input_files=7, rows=rows),
            run_dedup(spark, tmp_path, 5, input_files=3, rows=rows, **{"dedup.local_cc_max_edges": 0})]
    (c0, kept0, removed0) = runs[0]
    assert c0.extra["cc_on_driver"] and not runs[2][0].extra["cc_on_driver"] and c0.dropped["near_duplicate"] > 0
    for counts, kept, removed in runs[1:]:
        assertDataFrameEqual(kept, kept0)
        assertDataFrameEqual(removed, removed0)
        assert {**counts.extra, "cc_on_driver": 0, "cc_rounds": 0} == {**c0.extra, "cc_on_driver": 0, "cc_rounds": 0}
        assert (counts.rows_in, counts.rows_out, counts.dropped) == (c0.rows_in, c0.rows_out, c0.dropped)


def test_stage_finds_the_near_copies_that_exact_jaccard_finds(spark, tmp_path):
    """Pairs at or above the threshold by exact shingle-set Jaccard end up in one cluster, pairs
    well below it never do (the LSH curve is steep, not a step: 0.6-0.7 may go either way)."""
    rows = _near_copy_rows()
    text = {r[0]: r[5] for r in rows}
    counts, kept, removed = run_dedup(spark, tmp_path, 4, rows=rows)
    cluster_of = {r["id"]: r["cluster"] for r in removed.collect()}
    cluster_of.update({r["kept_id"]: r["cluster"] for r in removed.collect()})
    sims = {i: jaccard(shingle_strings(text[i + 1], 5), shingle_strings(text[100 + i], 5)) for i in range(20)}
    assert min(sims.values()) < 0.5 and max(sims.values()) == 1.0  # the set spans the threshold
    for i, sim in sims.items():
        together = cluster_of.get(i + 1) is not None and cluster_of.get(i + 1) == cluster_of.get(100 + i)
        if sim >= 0.7:
            assert together, (i, sim)
        elif sim < 0.6:
            assert not together, (i, sim)
    assert counts.rows_out + counts.dropped["near_duplicate"] == counts.rows_in == len(rows)


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
