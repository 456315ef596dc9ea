"""From documents to near-duplicate clusters and their survivors: pure DataFrame transforms."""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from codecorpus.stages.dedup.minhash import (
    SIGNATURE_DDL,
    MinHashParams,
    signature_batches,
)


def signature_frame(docs: DataFrame, params: MinHashParams, min_partitions: int = 1) -> DataFrame:
    """(id, bytes, keys, sig) for every document; keys and sig are null for documents with
    fewer than `min_tokens` tokens. Hashing is the costly part: an input read as fewer than
    `min_partitions` partitions is spread out first so that every core gets a share."""
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


def verified_edges(edges: DataFrame, sigs: DataFrame, threshold: float) -> DataFrame:
    """Candidate pairs whose signatures agree on at least `threshold` of their positions, i.e.
    whose MinHash estimate of the Jaccard similarity reaches the threshold."""
    s = sigs.select("id", "sig")
    agree = F.expr("size(filter(zip_with(src_sig, dst_sig, (x, y) -> x = y), e -> e)) / size(src_sig)")
    return (edges.join(s.select(F.col("id").alias("src"), F.col("sig").alias("src_sig")), "src")
            .join(s.select(F.col("id").alias("dst"), F.col("sig").alias("dst_sig")), "dst")
            .where(agree >= F.lit(threshold)).select("src", "dst"))


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

