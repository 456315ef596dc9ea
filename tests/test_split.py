"""The split stage: a validation share that hits its target however big the largest repository,
no repository on both sides, the same split for any partitioning, and the train/valid
duplicate audit with its three answers (group, report, fail)."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from codecorpus.core.config import Config
from codecorpus.core.errors import ConfigError, UserError
from pyspark.sql import functions as F

sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))  # appended: bench/ must not shadow jobs/
from dedup_reference import jaccard, shingle_strings

DDL = ("id BIGINT, repo_name STRING, path STRING, copies BIGINT, size BIGINT, content STRING, "
       "license STRING, shard STRING, line INT")
BIG = "huge/monorepo"


def row(i: int, repo: str, path: str, content: str, shard: str = "s0") -> tuple:
    return (i, repo, path, 1, len(content.encode()), content, "mit", shard, i)


def source(seed: int) -> str:
    """A Python-looking file of a few hundred tokens, its identifiers from a seeded vocabulary."""
    rng = random.Random(seed)
    word = lambda: "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 9)))
    lines = [f"import {word()}", ""]
    for _ in range(10):
        args = [word() for _ in range(3)]
        lines += [f"def {word()}({', '.join(args)}):", *[f"    {word()} = {a} * {rng.randint(2, 99)}" for a in args],
                  f"    return {args[0]}", ""]
    return "\n".join(lines)


def near_copy(src: str) -> str:
    """The same file with one line rewritten: still a near-duplicate (Jaccard about 0.9)."""
    lines = src.split("\n")
    lines[3] = "    renamed_value = other_thing * 7"
    return "\n".join(lines)


def coarse_corpus() -> list[tuple]:
    """One repository of 300 files and 50 of 1 to 5 files (150 in all): short files, so the
    audit has nothing to compare."""
    rows = [row(i, BIG, f"pkg/m{i}.py", f"x = {i}\n") for i in range(300)]
    i = 300
    for r in range(50):
        for k in range(1 + r % 5):
            rows.append(row(i, f"small/r{r:02d}", f"f{k}.py", f"y = {i}\n"))
            i += 1
    return rows


def leaky_corpus() -> list[tuple]:
    """300 files in one repository (always train: too big to move) and 100 files in small ones;
    three small repositories hold near-copies of big-repository files, one an exact copy.
    valid_fraction = 0.25 asks for exactly the small repositories' 100 files."""
    rows = [row(i, BIG, f"pkg/m{i}.py", source(i) if i < 4 else f"x = {i}\n", shard=f"s{i % 3}")
            for i in range(300)]
    planted = {"leak/a": near_copy(source(0)), "leak/b": near_copy(source(1)), "leak/c": source(2)}
    i = 1000
    for r in range(40):
        repo = sorted(planted)[r] if r < len(planted) else f"small/r{r:02d}"
        for k in range(1 + r % 4):  # 1 to 4 files: 100 in all
            content = planted[repo] if k == 0 and repo in planted else f"y = {i}\n"
            rows.append(row(i, repo, f"f{k}.py", content, shard=f"s{i % 3}"))
            i += 1
    return rows


def run_split(spark, root: Path, rows: list[tuple], partitions: int = 2, **settings):
    from codecorpus.core.registry import run_one

    (spark.createDataFrame(rows, DDL).repartition(partitions)
     .write.mode("overwrite").parquet(str(root / "ingest")))
    cfg = Config().replace(output=str(root), **{"clean.enabled": False, "dedup.enabled": False, **settings})
    old = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", str(partitions + 1))
    try:
        counts = run_one(spark, cfg, "split", force=True)
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", old)
    sides = {s: spark.read.parquet(str(root / "dataset" / s)).select("id", "repo_name") for s in ("train", "valid")}
    return counts, {s: {(r["id"], r["repo_name"]) for r in df.collect()} for s, df in sides.items()}


def repos(side: set) -> set:
    return {repo for _, repo in side}


# ----------------------------------------------------------------------------- the share target
@pytest.fixture(scope="module")
def coarse(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("split")
    settings = {"split.valid_fraction": 0.2, "record_digests": True}
    return (run_split(spark, tmp / "one", coarse_corpus(), 1, **settings),
            run_split(spark, tmp / "seven", coarse_corpus(), 7, **settings))


def test_the_old_hash_rule_misses_the_target_on_a_coarse_corpus(spark):
    from codecorpus.stages.split import unit_hash

    df = spark.createDataFrame(coarse_corpus(), DDL)
    valid = df.where(unit_hash(42, "repo_name") < F.lit(0.2)).count()
    assert not 0.16 <= valid / df.count() <= 0.24, valid  # whole repositories hashed to a side


def test_the_share_rule_hits_the_target_within_the_tolerance(coarse):
    counts, sides = coarse[0]
    share = counts.extra["share"]
    assert share["rule"] == "share" and share["within_tolerance"] and share["requested"] == 0.2
    assert 0.16 <= len(sides["valid"]) / 450 <= 0.24
    assert share["valid_files"] == len(sides["valid"]) and share["achieved"] == round(len(sides["valid"]) / 450, 6)
    assert BIG in repos(sides["train"])  # 300 files: too big to move (at most 36 may)
    assert share["movable_max_files"] == 36.0 and share["units"] == 51 and share["movable_units"] == 50


def test_no_repository_is_on_both_sides(coarse):
    counts, sides = coarse[0]
    assert not repos(sides["train"]) & repos(sides["valid"])
    assert counts.extra["repos_in_both_splits"] == 0
    assert len(sides["train"]) + len(sides["valid"]) == counts.rows_in == counts.rows_out == 450


def test_the_split_is_the_same_for_any_partitioning(coarse):
    (c1, s1), (c7, s7) = coarse
    assert s1 == s7
    assert c1.extra == c7.extra
    # the Parquet digests are of rows, whatever the files; the card lists file names, which differ
    rows = lambda c: {k: v for k, v in c.digests.items() if not k.endswith("README.md")}
    assert rows(c1) == rows(c7) and len(rows(c1)) == 2


def test_a_corpus_too_coarse_for_the_band_gets_the_nearest_unit(spark):
    from codecorpus.stages.split_assign import Target, valid_units

    sizes = spark.createDataFrame([(1, 50), (2, 31), (3, 12), (4, 2)], "unit BIGINT, files BIGINT")
    target = Target(100, 0.25, 0.2)
    chosen, facts = valid_units(sizes, target, seed=42)
    # only unit 4 is movable (at most 10 files); 2 + 31 is nearer 25 than 2 or 2 + 12
    assert sorted(r["unit"] for r in chosen.collect()) == [2, 4]
    assert target.facts(33)["within_tolerance"] is False
    assert facts["unmovable_unit_added"] and facts["movable_units"] == 1


def test_the_bucketed_running_sum_is_the_global_windows(spark):
    """running_files takes the seeded order's running sum bucket by bucket (no task holds every
    unit); it must equal one global window's, unit for unit, whatever the bucket count."""
    import random

    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from codecorpus.stages import split_assign
    from codecorpus.stages.split_assign import running_files, seeded_order

    rng = random.Random(3)
    units = spark.createDataFrame([(rng.randrange(-2**62, 2**62), rng.randint(1, 40)) for _ in range(3000)],
                                  "unit BIGINT, files BIGINT").repartition(7)
    order = Window.orderBy(*seeded_order(5)).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    expected = {r["unit"]: r["running"] for r in units.withColumn("running", F.sum("files").over(order)).collect()}
    for bits in (1, 4, split_assign.BUCKET_BITS):
        saved, split_assign.BUCKET_BITS = split_assign.BUCKET_BITS, bits
        try:
            got = {r["unit"]: r["running"] for r in running_files(units, 5).collect()}
        finally:
            split_assign.BUCKET_BITS = saved
        assert got == expected


def test_the_audit_keys_files_by_their_content_as_it_is_now(spark):
    """Clean's recorded key is used where clean changed nothing; a redacted file (clean's key
    is of the text before redaction) and a row without a recorded key are hashed afresh."""
    from codecorpus.stages.clean.exact import stripped_hash
    from codecorpus.stages.split_audit import exact_key

    rows = [(1, "a = 'KEY1'\n", "recorded-1", 1), (2, "a = 'KEY2'\n", "recorded-2", 1),
            (3, "b = 1\n", "recorded-3", 0)]
    df = spark.createDataFrame(rows, "id BIGINT, content STRING, content_hash STRING, redactions INT")
    got = {r["id"]: r["k"] for r in df.select("id", exact_key(df).alias("k")).collect()}
    assert got == {1: stripped_hash("a = 'KEY1'\n"), 2: stripped_hash("a = 'KEY2'\n"), 3: "recorded-3"}
    plain = df.select("id", "content")
    assert plain.select(exact_key(plain).alias("k")).where("id = 3").first()["k"] == stripped_hash("b = 1\n")


def test_config_checks_the_new_keys():
    with pytest.raises(ConfigError, match="split.leakage"):
        Config().replace(**{"split.leakage": "ignore"})
    with pytest.raises(ConfigError, match="split.tolerance"):
        Config().replace(**{"split.tolerance": 0})


# ----------------------------------------------------------------------------- leakage
@pytest.fixture(scope="module")
def leaky(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("leak")
    settings = {"split.valid_fraction": 0.25}
    return {mode: (*run_split(spark, tmp / mode, leaky_corpus(), 3, **settings, **{"split.leakage": mode}), tmp / mode)
            for mode in ("report", "group")}


def test_report_finds_the_planted_pairs_with_their_jaccard_and_moves_nothing(leaky):
    counts, sides, _ = leaky["report"]
    assert {"leak/a", "leak/b", "leak/c"} <= repos(sides["valid"])  # every small repository: 100 files
    assert len(sides["valid"]) == 100 and counts.extra["share"]["within_tolerance"]
    leak = counts.extra["leakage"]
    assert (leak["pairs"], leak["exact_pairs"], leak["near_pairs"]) == (3, 1, 2)
    found = {p["valid"]["repo_name"]: p for p in leak["listed"]}
    assert found["leak/c"]["kind"] == "exact" and found["leak/c"]["train"] == {"id": 2, "repo_name": BIG,
                                                                               "path": "pkg/m2.py"}
    for repo, original in (("leak/a", 0), ("leak/b", 1)):
        expected = jaccard(shingle_strings(source(original), 5), shingle_strings(near_copy(source(original)), 5))
        assert 0.7 <= expected < 1 and found[repo]["jaccard"] == round(expected, 4)
        assert found[repo]["kind"] == "near" and found[repo]["train"]["id"] == original


def test_group_keeps_linked_repositories_on_one_side_and_still_hits_the_target(leaky):
    counts, sides, _ = leaky["group"]
    assert {"leak/a", "leak/b", "leak/c"} <= repos(sides["train"])  # linked to the unmovable repository
    assert not repos(sides["train"]) & repos(sides["valid"])
    leak = counts.extra["leakage"]
    assert leak["pairs"] == 0 and leak["listed"] == [] and leak["verified_pairs"] == 2
    assert leak["linked_nodes"] == 4 and leak["groups"] == 1
    assert counts.extra["share"]["within_tolerance"] and len(sides["valid"]) == 100 - 6


def test_fail_stops_with_one_line_naming_a_pair(spark, tmp_path):
    with pytest.raises(UserError) as err:
        run_split(spark, tmp_path, leaky_corpus(), 2, **{"split.valid_fraction": 0.25, "split.leakage": "fail"})
    message = str(err.value)
    assert "\n" not in message and "3 train/valid file pair(s)" in message
    assert f"train {BIG}/pkg/m2.py (id 2) and valid leak/c/f0.py" in message


@pytest.mark.parametrize("by", ["file", "last-shard"])
def test_other_modes_group_near_copies_too(spark, tmp_path, by):
    counts, sides = run_split(spark, tmp_path, leaky_corpus(), 2, **{"split.by": by, "split.valid_fraction": 0.25})
    assert counts.extra["leakage"]["pairs"] == 0 and counts.extra["leakage"]["groups"] == 3
    side_of = {i: s for s, files in sides.items() for i, _ in files}
    for copy, original in ((1000, 0), (1001, 1), (1003, 2)):  # leak/a, leak/b, leak/c's first files
        assert side_of[copy] == side_of[original]
    assert counts.extra["share"]["rule"] == ("hash" if by == "file" else "last-shard")


def test_report_section_states_the_requested_and_achieved_share(leaky, tmp_path):
    from codecorpus.report.render import ReportContext
    from codecorpus.report.split import section

    counts, _, _ = leaky["report"]
    html = section(ReportContext(cfg=Config(), root=str(tmp_path), folder=str(tmp_path), counts={"split": counts}))
    assert "requested 25.00%" in html and "achieved <b>25.00%</b>" in html and "within the band" in html
    assert "leak/c/f0.py" in html and "<b>3</b> file pairs (1 exact, 2 near)" in html


def test_the_dataset_card_states_the_requested_and_achieved_share(leaky):
    card = (leaky["group"][2] / "dataset" / "README.md").read_text()
    assert "Validation holds **23.50%** of the files (94 of 400); requested 25.00% +- 20%" in card
    assert "**0** file pairs (split.leakage = group)" in card and "4 linked repositories" in card
    assert "| valid | 94 |" in card
