"""Stage `split`: deterministic train/valid split -> `dataset/train`, `dataset/valid`, `dataset/README.md`.

`split.by` says what moves to a side as a whole:
- `repo` (default): repositories, chosen so that validation holds `valid_fraction` of the
  FILES within `split.tolerance` (`split_assign` has the rule), and no repository is on both sides;
- `file`: each file, by a seeded hash of its id;
- `last-shard`: the lexicographically last shard is validation, as the book does.

Before anything is written, `split_audit` looks for train/valid pairs of exact or near-duplicate
files (the dedup stage's signatures and settings). `split.leakage` decides what they do:
"group" joins what they link (repositories; files for the other modes) into one unit that goes
to one side whole, so that neither a repository nor a near-copy crosses the split; "report"
only counts them; "fail" stops the stage naming one. Every choice is a function of the rows
and the seed, so any cluster shape gives the same split.
"""
from __future__ import annotations

import logging
import math

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from codecorpus.core.config import Config, SplitConfig
from codecorpus.core.errors import UserError
from codecorpus.core.stage import Counts, StageIO
from codecorpus.io import fs
from codecorpus.io.layout import SPLITS, split_location
from codecorpus.io.parquet import read_parquet, write_parquet
from codecorpus.publish.cards import local_dataset_card
from codecorpus.stages import split_audit
from codecorpus.stages.dedup.components import connected_components
from codecorpus.stages.dedup.stage import params_for
from codecorpus.stages.split_assign import Target, unit_sizes, valid_units

log = logging.getLogger("codecorpus")

NAME = "split"
DATASET_COLUMNS = ["id", "repo_name", "path", "copies", "size", "content", "license"]
HASH_BUCKETS = 1_000_000
LISTED_PAIRS = 20  # train/valid duplicate pairs named in the marker (all are counted)


def unit_hash(seed: int, col: str) -> Column:
    """A seeded hash of `col` mapped to [0, 1)."""
    return F.pmod(F.xxhash64(F.lit(seed), F.col(col)), F.lit(HASH_BUCKETS)) / F.lit(float(HASH_BUCKETS))


def node_column(by: str) -> Column:
    """What a duplicate pair links: a repository (a 64-bit hash of its name; a collision would
    only keep two repositories together) under by = "repo", else a file."""
    return F.xxhash64("repo_name") if by == "repo" else F.col("id")


def with_units(docs: DataFrame, components: DataFrame | None) -> DataFrame:
    """Adds `unit`: the node's component (named by its smallest node) when linked, else the node."""
    if components is None:
        return docs.withColumn("unit", F.col("node"))
    linked = components.select(F.col("id").alias("node"), "component")
    return (docs.join(linked, "node", "left")
            .withColumn("unit", F.coalesce(F.col("component"), F.col("node"))).drop("component"))


def assign_split(docs: DataFrame, cfg: SplitConfig, total: int) -> tuple[DataFrame, dict]:
    """Adds `split` ("train" | "valid") to rows that carry a `unit`; every unit lands on one
    side. Returns the facts of the repository rule ({} for the other modes)."""
    if cfg.by == "repo":
        chosen, facts = valid_units(unit_sizes(docs), Target(total, cfg.valid_fraction, cfg.tolerance), cfg.seed)
        df = docs.join(chosen.withColumn("_valid", F.lit(True)), "unit", "left")
        is_valid = F.col("_valid").isNotNull()
    elif cfg.by == "file":
        df, facts = docs, {}
        is_valid = unit_hash(cfg.seed, "unit") < F.lit(cfg.valid_fraction)
    else:  # last-shard: a unit goes where its smallest id's shard goes
        last = docs.agg(F.max("shard")).first()[0]
        df, facts = docs.join(docs.select(F.col("id").alias("unit"), F.col("shard").alias("_shard")), "unit"), {}
        is_valid = F.col("_shard") == F.lit(last)
    out = df.withColumn("split", F.when(is_valid, "valid").otherwise("train"))
    return out.drop("_valid", "_shard"), facts


def share_facts(cfg: SplitConfig, total: int, valid_files: int, rule_facts: dict) -> dict:
    """Requested and achieved share of files in validation."""
    if cfg.by == "last-shard":
        return {"rule": "last-shard", "requested": None, "files": total, "valid_files": valid_files,
                "achieved": round(valid_files / total, 6) if total else 0.0, "within_tolerance": None}
    facts = Target(total, cfg.valid_fraction, cfg.tolerance).facts(valid_files)
    return {**facts, "rule": "hash", **rule_facts}


def grouping(audit: split_audit.Audit, cfg: Config) -> tuple[DataFrame | None, dict]:
    """Under leakage = "group": the components of the nodes linked by duplicate pairs."""
    if cfg.split.leakage != "group":
        return None, {}
    components, rounds = connected_components(split_audit.links(audit), cfg.dedup.max_cc_iterations)
    components = components.localCheckpoint(eager=True)
    row = components.agg(F.count(F.lit(1)).alias("nodes"), F.countDistinct("component").alias("groups")).first()
    return components, {"linked_nodes": row["nodes"], "groups": row["groups"], "cc_rounds": rounds}


def split_totals(df: DataFrame) -> dict:
    per_split = {r["split"]: {"files": r["files"], "bytes": r["bytes"] or 0, "repos": r["repos"]} for r in
                 df.groupBy("split").agg(F.count("*").alias("files"), F.sum("bytes").alias("bytes"),
                                         F.countDistinct("repo_name").alias("repos")).collect()}
    for s in SPLITS:
        per_split.setdefault(s, {"files": 0, "bytes": 0, "repos": 0})
    return per_split


def audit_and_assign(spark: SparkSession, cfg: Config, docs: DataFrame, total: int, keys: DataFrame | None):
    """The split (every row with `split` and `bytes`), its share facts and its leakage facts.

    Not cached: each use (the audit's sides, the totals, each split's files) is a fresh read of
    the Parquet, pruned to the columns it needs, joined with the small checkpointed frames that
    give every file its side. Caching the rows would hold the whole dataset, content included,
    in executor memory or its spill; a re-read measured no slower on the default corpus."""
    params, shape, dc = params_for(cfg)
    audit = split_audit.prepare(docs, params, dc.threshold, 2 * spark.sparkContext.defaultParallelism, keys)
    components, grouped = grouping(audit, cfg)
    df, rule_facts = assign_split(with_units(docs, components), cfg.split, total)
    df = df.withColumn("bytes", F.octet_length("content"))
    found = split_audit.summarize(split_audit.cross_split(audit, df.select("id", "split")), df, LISTED_PAIRS)
    leakage = {"mode": cfg.split.leakage, "by": cfg.split.by, "threshold": dc.threshold, "ngram": dc.ngram,
               "min_tokens": dc.min_tokens, "num_perm": dc.num_perm, "bands": shape.bands, "rows": shape.rows,
               **audit.facts, **grouped, **found}
    return df, rule_facts, leakage


def dedup_keys(spark: SparkSession, io: StageIO) -> DataFrame | None:
    """The dedup stage's band keys of exactly the rows read, when they are what the split reads
    (with dedup off, the rows come from an earlier stage and are hashed afresh)."""
    if io.aliases.get("rows") != "dedup" or not fs.exists(io.input("dedup_keys")):
        return None
    return read_parquet(spark, io.input("dedup_keys"))


def build(spark: SparkSession, cfg: Config, io: StageIO) -> Counts:
    sc = cfg.split
    docs = read_parquet(spark, io.input("rows")).withColumn("node", node_column(sc.by))
    total = docs.count()
    df, rule_facts, leakage = audit_and_assign(spark, cfg, docs, total, dedup_keys(spark, io))
    if sc.leakage == "fail" and leakage["pairs"]:
        raise UserError(split_audit.fail_message(leakage))
    per_split = split_totals(df)
    share = share_facts(sc, total, per_split["valid"]["files"], rule_facts)
    both = df.groupBy("repo_name").agg(F.countDistinct("split").alias("k")).where("k > 1").count()

    for s in SPLITS:
        part = df.where(F.col("split") == s).select(*DATASET_COLUMNS)
        files = max(1, math.ceil(per_split[s]["files"] / sc.rows_per_file))
        write_parquet(part, io.output(split_location("dataset", s)), files=files, sort_by=["id"])
    files = {s: fs.list_names(io.output(split_location("dataset", s)), ".parquet") for s in SPLITS}
    clean = io.counts("clean")
    card = local_dataset_card(per_split, cfg, files, DATASET_COLUMNS, share=share, leakage=leakage,
                              opt_out=clean.extra.get("opt_out") if clean is not None else None)
    fs.write_text_atomic(io.output("dataset.card"), card)

    if share.get("within_tolerance") is False:
        log.warning("[split] validation holds %.2f%% of the files, outside %.2f%% +- %d%%%s",
                    100 * share["achieved"], 100 * sc.valid_fraction, round(100 * sc.tolerance),
                    ": the corpus's repositories are too coarse" if sc.by == "repo" else "")
    elif per_split["valid"]["files"] == 0:
        log.warning("[split] the valid split is empty; raise split.valid_fraction")
    if leakage["pairs"]:
        log.warning("[split] %d train/valid duplicate file pairs (split.leakage = %s)", leakage["pairs"], sc.leakage)
    return Counts(stage=NAME, rows_in=total, rows_out=per_split["train"]["files"] + per_split["valid"]["files"],
                  extra={"splits": per_split, "by": sc.by, "repos_in_both_splits": both,
                         "share": share, "leakage": leakage})
