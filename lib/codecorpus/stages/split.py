"""Stage `split`: deterministic train/valid split -> `dataset/train`, `dataset/valid`, `dataset/README.md`.

The split is a pure function of each row (a seeded 64-bit hash of its repository, its id, or its
shard), so it needs no global ordering and gives the same answer on any cluster shape:
- `repo` (default): whole repositories go to one side, so no repository leaks across splits;
- `file`: each file on its own;
- `last-shard`: the lexicographically last shard is validation, as the book does.
"""
from __future__ import annotations

import math

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from codecorpus.core.config import Config, SplitConfig
from codecorpus.core.stage import Counts, StageIO
from codecorpus.io import fs
from codecorpus.io.layout import SPLITS, split_location
from codecorpus.io.parquet import read_parquet, write_parquet
from codecorpus.publish.cards import local_dataset_card

NAME = "split"
DATASET_COLUMNS = ["id", "repo_name", "path", "copies", "size", "content", "license"]
HASH_BUCKETS = 1_000_000


def unit_hash(seed: int, col: str) -> Column:
    """A seeded hash of `col` mapped to [0, 1)."""
    return F.pmod(F.xxhash64(F.lit(seed), F.col(col)), F.lit(HASH_BUCKETS)) / F.lit(float(HASH_BUCKETS))


def assign_split(df: DataFrame, cfg: SplitConfig) -> DataFrame:
    """Adds `split` ("train" | "valid")."""
    if cfg.by == "last-shard":
        last = df.agg(F.max("shard")).first()[0]
        is_valid = F.col("shard") == F.lit(last)
    else:
        key = "repo_name" if cfg.by == "repo" else "id"
        is_valid = unit_hash(cfg.seed, key) < F.lit(cfg.valid_fraction)
    return df.withColumn("split", F.when(is_valid, "valid").otherwise("train"))


def build(spark: SparkSession, cfg: Config, io: StageIO) -> Counts:
    source = read_parquet(spark, io.input("rows"))
    df = assign_split(source, cfg.split).withColumn("bytes", F.octet_length("content")).cache()
    per_split = {r["split"]: {"files": r["files"], "bytes": r["bytes"] or 0, "repos": r["repos"]} for r in
                 df.groupBy("split").agg(F.count("*").alias("files"), F.sum("bytes").alias("bytes"),
                                         F.countDistinct("repo_name").alias("repos")).collect()}
    for s in SPLITS:
        per_split.setdefault(s, {"files": 0, "bytes": 0, "repos": 0})
    leaked = df.groupBy("repo_name").agg(F.countDistinct("split").alias("k")).where("k > 1").count()

    for s in SPLITS:
        part = df.where(F.col("split") == s).select(*DATASET_COLUMNS)
        files = max(1, math.ceil(per_split[s]["files"] / cfg.split.rows_per_file))
        write_parquet(part, io.output(split_location("dataset", s)), files=files, sort_by=["id"])
    df.unpersist()
    files = {s: fs.list_names(io.output(split_location("dataset", s)), ".parquet") for s in SPLITS}
    fs.write_text_atomic(io.output("dataset.card"), local_dataset_card(per_split, cfg, files, DATASET_COLUMNS))

    total = sum(v["files"] for v in per_split.values())
    if per_split["valid"]["files"] == 0:
        import logging

        logging.getLogger("codecorpus").warning("[split] the valid split is empty; raise split.valid_fraction")
    return Counts(stage=NAME, rows_in=total, rows_out=per_split["train"]["files"] + per_split["valid"]["files"],
                  extra={"splits": per_split, "by": cfg.split.by, "repos_in_both_splits": leaked})
