"""From documents to near-duplicate clusters and their survivors: DataFrame transforms, and for
an edge list small enough to collect, its components labelled on the driver in numpy."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from codecorpus.stages.dedup.components import connected_components, label_components
from codecorpus.stages.dedup.minhash import (
    SIGNATURE_DDL,
    MinHashParams,
    signature_batches,
)


def signature_frame(docs: DataFrame, params: MinHashParams, min_partitions: int = 1) -> DataFrame:
    """(id, bytes, keys, sig) for every document; keys and sig are null for documents with
    fewer than `min_tokens` tokens. An input read as fewer than `min_partitions` partitions is
    spread out first so that every core gets a share; no more than that, because moving the
    files through a shuffle costs more CPU than hashing them does."""
    pairs = docs.select("id", "content")
    if pairs.rdd.getNumPartitions() < min_partitions:
        pairs = pairs.repartition(min_partitions, "id")
    return pairs.mapInArrow(lambda it: signature_batches(it, params), SIGNATURE_DDL)


def candidate_edges(sigs: DataFrame) -> DataFrame:
    """(src, dst) pairs sharing a band bucket: every bucket member is linked to the bucket's
    smallest id (a star per bucket, not all pairs), so a bucket of n files costs n-1 edges."""
    buckets = sigs.select("id", F.posexplode("keys").alias("band", "key"))
    smallest = F.min("id").over(Window.partitionBy("band", "key"))
    return (buckets.withColumn("root", smallest).where(F.col("id") != F.col("root"))
            .select(F.col("id").alias("src"), F.col("root").alias("dst")).distinct())


def signature_agreement(left: str, right: str):
    """The share of positions where two signatures agree: the MinHash estimate of the Jaccard
    similarity of their files."""
    return F.expr(f"size(filter(zip_with({left}, {right}, (x, y) -> x = y), e -> e)) / size({left})")


def scored_edges(edges: DataFrame, sigs: DataFrame, threshold: float) -> DataFrame:
    """(src, dst, verified): every candidate pair, flagged where the signatures agree on at
    least `threshold` of their positions. One frame for both, so that candidates and their
    verification cost one Spark job, not one each."""
    s = sigs.select("id", "sig")
    return (edges.join(s.select(F.col("id").alias("src"), F.col("sig").alias("src_sig")), "src")
            .join(s.select(F.col("id").alias("dst"), F.col("sig").alias("dst_sig")), "dst")
            .select("src", "dst", (signature_agreement("src_sig", "dst_sig") >= F.lit(threshold)).alias("verified")))


def verified_edges(edges: DataFrame, sigs: DataFrame, threshold: float) -> DataFrame:
    """Candidate pairs whose MinHash estimate of the Jaccard similarity reaches the threshold."""
    return scored_edges(edges, sigs, threshold).where("verified").select("src", "dst")


@dataclass(frozen=True)
class Clustering:
    components: DataFrame  # (id, component) of every file with a kept edge
    candidates: int  # candidate pairs (star edges)
    kept_edges: int  # of them, those verified (all of them without verification)
    rounds: int  # component rounds
    on_driver: bool  # whether the components were labelled on the driver
    sizes: list[tuple[int, int]] | None = None  # (cluster size, clusters), when known on the driver


def cluster(scored: DataFrame, verify: bool, max_iterations: int, local_max_edges: int) -> Clustering:
    """Connected components of the kept edges of `scored` (src, dst, verified). When there are at
    most `local_max_edges` candidates, one Spark query brings them to the driver and numpy does
    the rest (counts and cluster sizes included); otherwise they are checkpointed, counted, and
    the Spark rounds run."""
    if local_max_edges > 0:
        table = scored.limit(local_max_edges + 1).toArrow()
        if table.num_rows <= local_max_edges:
            keep = (table.column("verified").to_numpy(zero_copy_only=False).astype(bool) if verify
                    else np.ones(table.num_rows, dtype=bool))
            src = table.column("src").to_numpy(zero_copy_only=False)[keep]
            dst = table.column("dst").to_numpy(zero_copy_only=False)[keep]
            nodes, comp, rounds = label_components(src, dst)
            frame = scored.sparkSession.createDataFrame(
                pa.table({"id": pa.array(nodes, pa.int64()), "component": pa.array(comp, pa.int64())}),
                "id BIGINT, component BIGINT")
            size, clusters = np.unique(np.unique(comp, return_counts=True)[1], return_counts=True)
            return Clustering(frame, table.num_rows, int(keep.sum()), rounds, True,
                              list(zip(size.tolist(), clusters.tolist())))
    scored = scored.localCheckpoint(eager=True)
    tally = scored.agg(F.count(F.lit(1)).alias("all"), F.count(F.when(F.col("verified"), 1)).alias("kept")).first()
    edges = scored.where("verified") if verify else scored
    components, rounds = connected_components(edges.select("src", "dst"), max_iterations)
    return Clustering(components, tally["all"], tally["kept"] if verify else tally["all"], rounds, False)


def survivor_order(permissive_licenses: list[str]) -> list:
    """Best first: permissive licence, most copies, smallest (repo_name, path), smallest id."""
    allowed = [lic.lower() for lic in permissive_licenses]
    permissive = F.lower(F.coalesce(F.col("license"), F.lit(""))).isin(allowed) if allowed else F.lit(False)
    return [permissive.desc(), F.coalesce(F.col("copies"), F.lit(0)).desc(),
            F.col("repo_name").asc_nulls_last(), F.col("path").asc_nulls_last(), F.col("id").asc()]


def rank_members(components: DataFrame, docs: DataFrame, permissive_licenses: list[str]) -> DataFrame:
    """(id, cluster, kept_id, cluster_size) for every clustered document; the survivor of a
    cluster is its first member in `survivor_order`, `cluster` is its smallest id."""
    attrs = docs.select("id", "license", "copies", "repo_name", "path")
    whole = Window.partitionBy("cluster")
    ordered = whole.orderBy(*survivor_order(permissive_licenses))
    return (components.withColumnRenamed("component", "cluster").join(attrs, "id")
            .withColumn("rank", F.row_number().over(ordered))
            .withColumn("kept_id", F.max(F.when(F.col("rank") == 1, F.col("id"))).over(whole))
            .withColumn("cluster_size", F.count(F.lit(1)).over(whole))
            .select("id", "cluster", "kept_id", "cluster_size"))

