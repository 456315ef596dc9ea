"""Stage `stats`: corpus statistics of the ingested rows -> `stats/stats.json`.

All figures are Spark aggregations; only small results (histogram bins, top-N lists) reach the
driver. "Exact duplicate" is the clean stage's key (`clean.exact.stripped_hash`: MD5 of the
content with all whitespace removed), so both stages count the same duplicates. Duplicate bytes
count every copy beyond one per group (at the group's mean size).

The content is read once: one pass makes a small row per file (repository, licence, size, key)
and every figure is aggregated from those rows, cached. Caching the rows with their content
instead would hold the whole corpus in executor memory (or spill it), and the key's Python pass
would still see every text.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from codecorpus.core.config import Config
from codecorpus.core.stage import Counts, StageIO
from codecorpus.io import fs
from codecorpus.io.parquet import read_parquet
from codecorpus.io.shards import TYPED_COLUMNS
from codecorpus.stages.clean import exact

NAME = "stats"
BINS_PER_DECADE = 4


def measured(df: DataFrame) -> DataFrame:
    """One small row per file: what every figure below is aggregated from (no content)."""
    return df.select("repo_name", "license", F.octet_length("content").alias("bytes"),
                     exact.content_hash_udf()(F.col("content")).alias("h"))


def size_histogram(df: DataFrame) -> list[dict]:
    """Counts of files per log10 size bin (BINS_PER_DECADE bins a decade); empty files in bin '0'."""
    binned = df.select(F.when(F.col("bytes") > 0, F.floor(F.log10("bytes") * BINS_PER_DECADE))
                       .otherwise(F.lit(-1)).alias("bin"))
    rows = binned.groupBy("bin").count().orderBy("bin").collect()
    out = []
    for r in rows:
        lo = 0 if r["bin"] < 0 else 10 ** (r["bin"] / BINS_PER_DECADE)
        hi = 1 if r["bin"] < 0 else 10 ** ((r["bin"] + 1) / BINS_PER_DECADE)
        out.append({"lo": round(lo, 1), "hi": round(hi, 1), "files": r["count"]})
    return out


def totals(df: DataFrame) -> dict:
    t = df.agg(F.count("*").alias("files"), F.sum("bytes").alias("bytes"),
               F.countDistinct("repo_name").alias("repos"),
               F.percentile_approx("bytes", [0.5, 0.9, 0.99], 10000).alias("pct"),
               F.max("bytes").alias("max_bytes"),
               F.sum(F.when(F.col("bytes") == 0, 1).otherwise(0)).alias("empty_files")).first()
    files, total_bytes, pct = t["files"], t["bytes"] or 0, t["pct"] or [0, 0, 0]
    return {"files": files, "bytes": total_bytes, "repos": t["repos"], "empty_files": t["empty_files"],
            "size_bytes": {"mean": round(total_bytes / files, 1) if files else 0, "p50": pct[0], "p90": pct[1],
                           "p99": pct[2], "max": t["max_bytes"] or 0}}


def exact_duplicates(df: DataFrame, files: int, total_bytes: int) -> dict:
    groups = df.groupBy("h").agg(F.count("*").alias("n"), F.sum("bytes").alias("b"))
    d = groups.agg(F.count("*").alias("groups"), F.sum(F.col("n") - 1).alias("dup_files"),
                   F.sum(F.col("b") * (F.col("n") - 1) / F.col("n")).alias("dup_bytes"),
                   F.max("n").alias("largest")).first()
    dup_files, dup_bytes = d["dup_files"] or 0, d["dup_bytes"] or 0
    return {"distinct_contents": d["groups"] or 0, "duplicate_files": dup_files,
            "duplicate_share_files": dup_files / files if files else 0.0,
            "duplicate_bytes": round(dup_bytes),
            "duplicate_share_bytes": dup_bytes / total_bytes if total_bytes else 0.0,
            "largest_group": d["largest"] or 0}


def top(df: DataFrame, key: str, n: int | None = None) -> list[dict]:
    """Files and bytes per value of `key`, most files first (the first `n`, or all)."""
    grouped = (df.groupBy(key).agg(F.count("*").alias("files"), F.sum("bytes").alias("bytes"))
               .orderBy(F.desc("files"), key))
    rows = (grouped.limit(n) if n is not None else grouped).collect()
    return [{key: r[key], "files": r["files"], "bytes": r["bytes"]} for r in rows]


def corpus_stats(df: DataFrame, top_n: int) -> dict:
    df = measured(df).cache()
    stats = totals(df)
    stats["exact_duplicates"] = exact_duplicates(df, stats["files"], stats["bytes"])
    stats["licenses"] = top(df, "license")
    stats["top_repos"] = top(df, "repo_name", top_n)
    stats["size_histogram"] = size_histogram(df)
    df.unpersist()
    return stats


def ingest_summary(ingest: Counts) -> dict:
    return {"lines_read": ingest.extra.get("lines_read"), "rows_ingested": ingest.rows_out,
            "rows_quarantined": ingest.quarantined,
            "quarantine_reasons": ingest.extra.get("quarantine_reasons", {}),
            "corrupt_shards": ingest.extra.get("corrupt_shards", []), "shards": ingest.extra.get("shards")}


def build(spark: SparkSession, cfg: Config, io: StageIO) -> Counts:
    df = read_parquet(spark, io.input("ingest")).select(*TYPED_COLUMNS)
    stats = corpus_stats(df, cfg.stats.top_n)
    ingest = io.counts("ingest")
    if ingest is not None:
        stats["ingest"] = ingest_summary(ingest)
    fs.write_json_atomic(io.output("stats.json"), stats)
    return Counts(stage=NAME, rows_in=stats["files"], rows_out=stats["files"], extra={
        "files": stats["files"], "bytes": stats["bytes"],
        "duplicate_share_files": stats["exact_duplicates"]["duplicate_share_files"]})
