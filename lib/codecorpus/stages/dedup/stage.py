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

from codecorpus.core.config import Config, DedupConfig
from codecorpus.core.errors import UserError
from codecorpus.core.stage import Counts, StageIO
from codecorpus.io.parquet import read_parquet, write_parquet
from codecorpus.stages.dedup.clusters import (
    candidate_edges,
    cluster,
    rank_members,
    scored_edges,
    signature_frame,
)
from codecorpus.stages.dedup.lsh import LshShape, shape_for
from codecorpus.stages.dedup.minhash import MinHashParams

log = logging.getLogger("codecorpus")

NAME = "dedup"
REASON = "near_duplicate"
# Up to this many removed files, their ids are broadcast to the joins that write the outputs,
# so the files themselves are never shuffled (a sort-merge join would move every file twice).
BROADCAST_REMOVED = 1_000_000


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


def build(spark: SparkSession, cfg: Config, io: StageIO) -> Counts:
    params, shape, dc = params_for(cfg)
    log.info("[dedup] %d-grams, %d permutations, threshold %.2f: %d bands x %d rows "
             "(FP area %.4f, FN area %.4f)", dc.ngram, dc.num_perm, dc.threshold, shape.bands, shape.rows,
             shape.fp_area, shape.fn_area)
    docs = read_parquet(spark, io.input("rows"))
    started = time.time()

    # Signatures are computed once and kept: totals, edges and verification all read them.
    cores = spark.sparkContext.defaultParallelism
    sigs = signature_frame(docs, params, min_partitions=cores).localCheckpoint(eager=True)
    totals = sigs.agg(F.count(F.lit(1)).alias("rows"), F.count("sig").alias("hashed"),
                      F.sum("bytes").alias("bytes"), F.count_distinct("id").alias("ids")).first()
    rows_in, hashed, in_bytes = totals["rows"], totals["hashed"], totals["bytes"] or 0
    log.info("[dedup] signatures: %d of %d files hashed (%.0fs)", hashed, rows_in, time.time() - started)
    if totals["ids"] != rows_in:
        raise UserError(f"{io.input('rows')}: {rows_in - totals['ids']:,} rows repeat another row's id; "
                        "ids must be unique (re-run ingest)")
    # Candidates, their verification and (when they are few) their components: one Spark query.
    clusters = cluster(scored_edges(candidate_edges(sigs), sigs, dc.threshold), dc.verify,
                       dc.max_cc_iterations, dc.local_cc_max_edges)
    candidates, kept_edges, rounds = clusters.candidates, clusters.kept_edges, clusters.rounds
    log.info("[dedup] %d candidate edges, %d verified; components %s after %d rounds (%.0fs)", candidates,
             kept_edges, "on the driver" if clusters.on_driver else "in Spark", rounds, time.time() - started)
    components = clusters.components
    members = rank_members(components, docs, cfg.clean.licenses_allow).localCheckpoint(eager=True)
    log.info("[dedup] clusters ranked (%.0fs)", time.time() - started)
    sizes = clusters.sizes if clusters.sizes is not None else sorted(
        (r["cluster_size"], r["n"]) for r in members.groupBy("cluster").agg(F.first("cluster_size").alias("cluster_size"))
        .groupBy("cluster_size").agg(F.count(F.lit(1)).alias("n")).collect())
    removed = members.where(F.col("id") != F.col("kept_id"))
    if sum((size - 1) * n for size, n in sizes) <= BROADCAST_REMOVED:  # one survivor per cluster
        removed = F.broadcast(removed)
    gone_ids = removed.select("id")

    write_parquet(docs.join(gone_ids, "id", "left_anti"), io.output("dedup"), sort_by=["id"])
    write_parquet(docs.join(removed, "id"), io.output("dedup_removed"), sort_by=["cluster", "id"])
    # The band keys of what survives, so the split's cross-split audit need not hash again.
    kept_keys = sigs.where(F.col("keys").isNotNull()).select("id", "keys").join(gone_ids, "id", "left_anti")
    write_parquet(kept_keys, io.output("dedup_keys"), sort_by=["id"])

    # Figures from what was written, so the accounting checks the files themselves.
    rows_out = read_parquet(spark, io.output("dedup")).count()
    gone = read_parquet(spark, io.output("dedup_removed")).agg(
        F.count(F.lit(1)).alias("files"), F.sum(F.octet_length("content")).alias("bytes")).first()
    return Counts(stage=NAME, rows_in=rows_in, rows_out=rows_out, dropped={REASON: gone["files"]}, extra={
        "ngram": dc.ngram, "num_perm": dc.num_perm, "threshold": dc.threshold, "min_tokens": dc.min_tokens,
        "preset": cfg.dedup.preset, "verify": dc.verify,
        "bands": shape.bands, "rows": shape.rows,
        "estimated_fp_area": round(shape.fp_area, 6), "estimated_fn_area": round(shape.fn_area, 6),
        "files_hashed": hashed, "files_too_short": rows_in - hashed,
        "candidate_edges": candidates, "verified_edges": kept_edges, "cc_rounds": rounds,
        "cc_on_driver": clusters.on_driver,
        "clusters": sum(n for _, n in sizes), "files_in_clusters": sum(s * n for s, n in sizes),
        "cluster_sizes": [[s, n] for s, n in sizes],
        "cluster_size_bins": size_histogram(sizes),
        "files_removed": gone["files"], "bytes_removed": gone["bytes"] or 0, "bytes_in": in_bytes,
    })
