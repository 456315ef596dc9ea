"""Stage `stats`: corpus statistics of the ingested rows -> `stats/stats.json`.

All figures are Spark aggregations; only small results (histogram bins, top-N lists) reach the
driver. "Exact duplicate" here uses the same key as the clean stage: MD5 of the content with all
whitespace removed. Duplicate bytes count every copy beyond one per group (at the group's mean
size).
"""
from __future__ import annotations

import math

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .config import Config
from .ingest import read_ingest
from .io import fs
from .stage import Counts, StageOutputs, load_counts

NAME = "stats"
OUTPUTS = ["stats"]
BINS_PER_DECADE = 4


def with_bytes(df: DataFrame) -> DataFrame:
    return df.withColumn("bytes", F.octet_length("content"))


def exact_key(content_col: str = "content"):
    """The exact-duplicate key: MD5 of the content with all whitespace removed."""
    return F.md5(F.regexp_replace(F.col(content_col), r"\s+", ""))


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


def corpus_stats(df: DataFrame, top_n: int) -> dict:
    df = with_bytes(df).cache()
    totals = df.agg(F.count("*").alias("files"), F.sum("bytes").alias("bytes"),
                    F.countDistinct("repo_name").alias("repos"),
                    F.percentile_approx("bytes", [0.5, 0.9, 0.99], 10000).alias("pct"),
                    F.max("bytes").alias("max_bytes"),
                    F.sum(F.when(F.col("bytes") == 0, 1).otherwise(0)).alias("empty_files")).first()
    files, total_bytes = totals["files"], totals["bytes"] or 0
    groups = df.groupBy(exact_key().alias("h")).agg(F.count("*").alias("n"), F.sum("bytes").alias("b"))
    dup = groups.agg(F.count("*").alias("groups"),
                     F.sum(F.col("n") - 1).alias("dup_files"),
                     F.sum(F.col("b") * (F.col("n") - 1) / F.col("n")).alias("dup_bytes"),
                     F.max("n").alias("largest")).first()
    licenses = [{"license": r["license"], "files": r["files"], "bytes": r["bytes"]} for r in
                df.groupBy("license").agg(F.count("*").alias("files"), F.sum("bytes").alias("bytes"))
                .orderBy(F.desc("files"), "license").collect()]
    repos = [{"repo_name": r["repo_name"], "files": r["files"], "bytes": r["bytes"]} for r in
             df.groupBy("repo_name").agg(F.count("*").alias("files"), F.sum("bytes").alias("bytes"))
             .orderBy(F.desc("files"), "repo_name").limit(top_n).collect()]
    hist = size_histogram(df)
    df.unpersist()
    pct = totals["pct"] or [0, 0, 0]
    return {
        "files": files,
        "bytes": total_bytes,
        "repos": totals["repos"],
        "empty_files": totals["empty_files"],
        "size_bytes": {"mean": round(total_bytes / files, 1) if files else 0, "p50": pct[0], "p90": pct[1],
                       "p99": pct[2], "max": totals["max_bytes"] or 0},
        "exact_duplicates": {
            "distinct_contents": dup["groups"] or 0,
            "duplicate_files": dup["dup_files"] or 0,
            "duplicate_share_files": (dup["dup_files"] or 0) / files if files else 0.0,
            "duplicate_bytes": round(dup["dup_bytes"] or 0),
            "duplicate_share_bytes": (dup["dup_bytes"] or 0) / total_bytes if total_bytes else 0.0,
            "largest_group": dup["largest"] or 0,
        },
        "licenses": licenses,
        "top_repos": repos,
        "size_histogram": hist,
    }


def build(spark: SparkSession, cfg: Config, out: StageOutputs) -> Counts:
    df = read_ingest(spark, cfg.output)
    stats = corpus_stats(df, cfg.stats.top_n)
    ingest = load_counts(cfg.output, "ingest")
    if ingest is not None:
        stats["ingest"] = {"lines_read": ingest.extra.get("lines_read"), "rows_ingested": ingest.rows_out,
                           "rows_quarantined": ingest.quarantined,
                           "quarantine_reasons": ingest.extra.get("quarantine_reasons", {}),
                           "corrupt_shards": ingest.extra.get("corrupt_shards", []),
                           "shards": ingest.extra.get("shards")}
    fs.makedirs(out.tmp("stats"))
    fs.write_json_atomic(out.tmp("stats") + "/stats.json", stats)
    return Counts(stage=NAME, rows_in=stats["files"], rows_out=stats["files"], extra={
        "files": stats["files"], "bytes": stats["bytes"],
        "duplicate_share_files": stats["exact_duplicates"]["duplicate_share_files"]})


def report_section(ctx) -> str | None:
    stats = ctx.read_json("stats/stats.json")
    if not stats:
        return None
    import matplotlib.pyplot as plt

    parts = [f"<p>{stats['files']:,} files, {stats['bytes'] / 1e6:,.1f} MB, {stats['repos']:,} repositories; "
             f"median file {stats['size_bytes']['p50']:,} bytes, largest {stats['size_bytes']['max']:,}.</p>"]
    ing = stats.get("ingest")
    if ing:
        parts.append(f"<p>Ingest: {ing['lines_read']:,} lines read from {ing['shards']} shards = "
                     f"{ing['rows_ingested']:,} rows + {ing['rows_quarantined']:,} quarantined "
                     f"{ing['quarantine_reasons'] or ''}.</p>")

    fig, ax = plt.subplots(figsize=(7, 3.2))
    hist = stats["size_histogram"]
    lefts = [max(h["lo"], 1) for h in hist]
    widths = [max(h["hi"], 1) - max(h["lo"], 1) or 1 for h in hist]
    ax.bar(lefts, [h["files"] for h in hist], width=widths, align="edge", edgecolor="black")
    ax.set_xscale("log")
    ax.set_xlabel("file size (bytes, log scale)")
    ax.set_ylabel("files")
    ax.set_title("File sizes")
    parts.append(ctx.savefig(fig, "size_histogram"))

    lic = stats["licenses"][:15]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.barh([l["license"] for l in lic][::-1], [l["files"] for l in lic][::-1])
    ax.set_xlabel("files")
    ax.set_title("Licences")
    parts.append(ctx.savefig(fig, "licenses"))

    repos = stats["top_repos"][:15]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.barh([r["repo_name"] for r in repos][::-1], [r["files"] for r in repos][::-1])
    ax.set_xlabel("files")
    ax.set_title(f"Top {len(repos)} repositories")
    fig.tight_layout()
    parts.append(ctx.savefig(fig, "top_repos"))

    dup = stats["exact_duplicates"]
    fig, ax = plt.subplots(figsize=(5, 2.6))
    shares = [dup["duplicate_share_files"], dup["duplicate_share_bytes"]]
    ax.bar(["files", "bytes"], [s * 100 for s in shares], color=["#c44", "#c84"])
    ax.set_ylim(0, 100)
    ax.set_ylabel("% exact duplicates")
    ax.set_title("Exact-duplicate share (whitespace-insensitive)")
    parts.append(ctx.savefig(fig, "duplicate_share"))
    parts.append(f"<p>Exact duplicates: {dup['duplicate_files']:,} files "
                 f"({dup['duplicate_share_files']:.1%}), {dup['duplicate_bytes'] / 1e6:,.1f} MB "
                 f"({dup['duplicate_share_bytes']:.1%}); largest group {dup['largest_group']:,} copies.</p>")
    if math.isfinite(stats["size_bytes"]["mean"]):
        parts.append(ctx.table([{"statistic": k, "bytes": v} for k, v in stats["size_bytes"].items()]))
    return "\n".join(parts)
