"""Stage `dedup`: near-duplicate files removed with MinHash LSH (`dedup/`), and the removed rows
with their cluster and survivor (`dedup_removed/`), so nothing disappears without a trace.

Reads the nearest enabled earlier stage (clean, else ingest) and passes every column through.
Files with fewer than `dedup.min_tokens` tokens are never hashed, so never removed.
"""
from __future__ import annotations

import logging
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ..config import Config, DedupConfig
from ..errors import UserError
from ..io.parquet import read_parquet, write_parquet
from ..stage import Counts, StageOutputs
from ..stages import data_input
from .clusters import candidate_edges, rank_members, signature_frame, verified_edges
from .components import connected_components
from .lsh import LshShape, shape_for
from .minhash import MinHashParams

log = logging.getLogger("codecorpus")

NAME = "dedup"
OUTPUTS = ["dedup", "dedup_removed"]
REASON = "near_duplicate"


def params_for(cfg: Config) -> tuple[MinHashParams, LshShape, DedupConfig]:
    dc = cfg.dedup.resolved()
    shape = shape_for(dc.threshold, dc.num_perm, dc.bands, dc.rows, dc.fp_weight, dc.fn_weight)
    params = MinHashParams(ngram=dc.ngram, min_tokens=dc.min_tokens, num_perm=dc.num_perm,
                           bands=shape.bands, rows=shape.rows, seed=dc.seed)
    return params, shape, dc


def size_histogram(sizes: list[tuple[int, int]]) -> list[dict]:
    """Cluster sizes in powers-of-two bins: [{"bin": "5-8", "clusters": n, "files": m}, ...]."""
    bins: dict[int, list[int]] = {}
    for size, n in sizes:
        lo = 2 if size <= 2 else (1 << ((size - 1).bit_length() - 1)) + 1
        cell = bins.setdefault(lo, [0, 0])
        cell[0] += n
        cell[1] += n * size
    out = []
    for lo in sorted(bins):
        hi = 2 if lo == 2 else 2 * (lo - 1)
        out.append({"bin": str(lo) if lo == hi else f"{lo}-{hi}", "clusters": bins[lo][0], "files": bins[lo][1]})
    return out


def build(spark: SparkSession, cfg: Config, out: StageOutputs) -> Counts:
    params, shape, dc = params_for(cfg)
    log.info("[dedup] %d-grams, %d permutations, threshold %.2f: %d bands x %d rows "
             "(FP area %.4f, FN area %.4f)", dc.ngram, dc.num_perm, dc.threshold, shape.bands, shape.rows,
             shape.fp_area, shape.fn_area)
    docs = read_parquet(spark, data_input(cfg, NAME))
    started = time.time()

    # Signatures are computed once and kept: totals, edges and verification all read them.
    cores = spark.sparkContext.defaultParallelism
    sigs = signature_frame(docs, params, min_partitions=2 * cores).localCheckpoint(eager=True)
    totals = sigs.agg(F.count(F.lit(1)).alias("rows"), F.count("sig").alias("hashed"),
                      F.sum("bytes").alias("bytes"), F.count_distinct("id").alias("ids")).first()
    rows_in, hashed, in_bytes = totals["rows"], totals["hashed"], totals["bytes"] or 0
    log.info("[dedup] signatures: %d of %d files hashed (%.0fs)", hashed, rows_in, time.time() - started)
    if totals["ids"] != rows_in:
        raise UserError(f"{data_input(cfg, NAME)}: {rows_in - totals['ids']:,} rows repeat another row's id; "
                        "ids must be unique (re-run ingest)")
    edges = candidate_edges(sigs).localCheckpoint(eager=True)
    candidates = edges.count()
    if dc.verify:
        edges = verified_edges(edges, sigs, dc.threshold).localCheckpoint(eager=True)
    kept_edges = edges.count()
    log.info("[dedup] %d candidate edges, %d verified (%.0fs)", candidates, kept_edges, time.time() - started)
    components, rounds = connected_components(edges, dc.max_cc_iterations)
    members = rank_members(components, docs, cfg.clean.licenses_allow).localCheckpoint(eager=True)
    log.info("[dedup] clusters after %d component rounds (%.0fs)", rounds, time.time() - started)
    removed = members.where(F.col("id") != F.col("kept_id"))

    write_parquet(docs.join(removed.select("id"), "id", "left_anti"), out.tmp("dedup"), sort_by=["id"])
    write_parquet(docs.join(removed, "id"), out.tmp("dedup_removed"), sort_by=["cluster", "id"])

    # Figures from what was written, so the accounting checks the files themselves.
    rows_out = spark.read.parquet(out.tmp("dedup")).count()
    gone = spark.read.parquet(out.tmp("dedup_removed")).agg(
        F.count(F.lit(1)).alias("files"), F.sum(F.octet_length("content")).alias("bytes")).first()
    sizes = sorted((r["cluster_size"], r["n"]) for r in members.groupBy("cluster")
                   .agg(F.first("cluster_size").alias("cluster_size"))
                   .groupBy("cluster_size").agg(F.count(F.lit(1)).alias("n")).collect())
    return Counts(stage=NAME, rows_in=rows_in, rows_out=rows_out, dropped={REASON: gone["files"]}, extra={
        "ngram": dc.ngram, "num_perm": dc.num_perm, "threshold": dc.threshold, "min_tokens": dc.min_tokens,
        "preset": cfg.dedup.preset, "verify": dc.verify,
        "bands": shape.bands, "rows": shape.rows,
        "estimated_fp_area": round(shape.fp_area, 6), "estimated_fn_area": round(shape.fn_area, 6),
        "files_hashed": hashed, "files_too_short": rows_in - hashed,
        "candidate_edges": candidates, "verified_edges": kept_edges, "cc_rounds": rounds,
        "clusters": sum(n for _, n in sizes), "files_in_clusters": sum(s * n for s, n in sizes),
        "cluster_sizes": [[s, n] for s, n in sizes],
        "cluster_size_bins": size_histogram(sizes),
        "files_removed": gone["files"], "bytes_removed": gone["bytes"] or 0, "bytes_in": in_bytes,
    })


def report_section(ctx) -> str | None:
    counts = ctx.counts.get(NAME)
    if counts is None:
        return None
    ex = counts.extra
    parts = [f"<p>MinHash LSH: {ex['ngram']}-gram shingles, {ex['num_perm']} permutations, "
             f"threshold {ex['threshold']}, {ex['bands']} bands &times; {ex['rows']} rows "
             f"(false-positive area {ex['estimated_fp_area']:.4f}, false-negative area "
             f"{ex['estimated_fn_area']:.4f}); candidates {'verified by signature' if ex['verify'] else 'not verified'}."
             "</p>"]
    share = lambda part, whole: f"{100 * part / whole:.1f}%" if whole else "-"  # noqa: E731
    parts.append(ctx.table([
        {"figure": "files in", "value": f"{counts.rows_in:,}"},
        {"figure": "files too short to hash (kept)", "value": f"{ex['files_too_short']:,}"},
        {"figure": "clusters", "value": f"{ex['clusters']:,}"},
        {"figure": "files in clusters", "value": f"{ex['files_in_clusters']:,}"},
        {"figure": "files removed", "value": f"{ex['files_removed']:,} ({share(ex['files_removed'], counts.rows_in)})"},
        {"figure": "bytes removed", "value": f"{ex['bytes_removed'] / 1e6:,.1f} MB "
                                            f"({share(ex['bytes_removed'], ex['bytes_in'])})"},
        {"figure": "component rounds", "value": ex["cc_rounds"]},
    ]))
    bins = ex.get("cluster_size_bins") or []
    if bins:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.5, 3.2))
        ax.bar([b["bin"] for b in bins], [b["clusters"] for b in bins], color="#4c72b0")
        ax.set_yscale("log")
        ax.set_xlabel("cluster size (files)")
        ax.set_ylabel("clusters")
        ax.set_title("Near-duplicate cluster sizes")
        parts.append(ctx.savefig(fig, "dedup_cluster_sizes"))
        parts.append(ctx.table(bins))
    return "".join(parts)
