"""Connected components of an edge list: on the driver in numpy when the edges are few, else in
Spark DataFrames.

Spark: the large-star / small-star iterations of Kiveris et al. ("Connected Components in
MapReduce and Beyond", 2014): each round points every node at the smallest node it can see,
until every component is a star around its smallest id. Nothing collected to the driver but one
small fingerprint per round; each round's edges are checkpointed so the query plan does not grow
with the number of rounds. Every round costs two Spark jobs, a fixed cost that dominates when a
corpus has a few thousand near-duplicate edges.

Driver (`label_components`): an edge list small enough to collect is labelled by min-label
hooking with pointer jumping in numpy. Both give the same answer, each component's smallest
id, so which one ran never shows in the outputs (the tests check they agree).
"""
from __future__ import annotations

import logging

import numpy as np
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from codecorpus.core.errors import UserError

log = logging.getLogger("codecorpus")


def _normalise(edges: DataFrame) -> DataFrame:
    """Undirected edges as (src > dst) pairs, without self-loops or repeats."""
    return (edges.select(F.greatest("src", "dst").alias("src"), F.least("src", "dst").alias("dst"))
            .where(F.col("src") != F.col("dst")).distinct())


def large_star(edges: DataFrame) -> DataFrame:
    """Every node u links each larger neighbour v to m(u), the smallest of u and its neighbours."""
    both = edges.select(F.col("src").alias("u"), F.col("dst").alias("v")).unionByName(
        edges.select(F.col("dst").alias("u"), F.col("src").alias("v")))
    m = F.least(F.col("u"), F.min("v").over(Window.partitionBy("u")))
    # Repeated edges are left for small_star, whose distinct removes them in the same round.
    return (both.withColumn("m", m).where(F.col("v") > F.col("u"))
            .select(F.col("v").alias("src"), F.col("m").alias("dst")))


def small_star(edges: DataFrame) -> DataFrame:
    """Every node u links itself and each smaller neighbour to the smallest of them."""
    oriented = edges.select(F.greatest("src", "dst").alias("u"), F.least("src", "dst").alias("v"))
    with_m = oriented.withColumn("m", F.min("v").over(Window.partitionBy("u")))
    return (with_m.select(F.col("v").alias("src"), F.col("m").alias("dst"))
            .unionByName(with_m.select(F.col("u").alias("src"), F.col("m").alias("dst")))
            .where(F.col("src") != F.col("dst")).distinct())


def _fingerprint(edges: DataFrame) -> tuple:
    """Order-free summary of an edge set: equal sets give equal fingerprints."""
    h = F.xxhash64("src", "dst")
    row = edges.agg(F.count(F.lit(1)).alias("n"), F.sum(h.bitwiseAND(F.lit(0xFFFFFFFF))).alias("s"),
                    F.bit_xor(h).alias("x")).first()
    return (row["n"], row["s"], row["x"])


def label_components(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(nodes, component of each node, rounds) of an undirected edge list in numpy: nodes are
    the sorted distinct ends, a component is named by its smallest node. As in the Spark
    rounds, a self-loop makes no component."""
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    proper = src != dst
    src, dst = src[proper], dst[proper]
    if len(src) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), 0
    nodes, index = np.unique(np.concatenate([src, dst]), return_inverse=True)
    s, d = index[:len(src)], index[len(src):]
    label = np.arange(len(nodes))  # label[v]: a node of v's component, never a larger one than v's
    rounds = 0
    while True:
        rounds += 1
        before = label.copy()
        ls, ld = label[s], label[d]
        low = np.minimum(ls, ld)
        for ends in (s, d, ls, ld):  # hook both ends and the nodes they point at
            np.minimum.at(label, ends, low)
        while True:  # pointer jumping: every node straight to the end of its chain
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped
        if np.array_equal(label, before):  # every edge inside one label: they are the components
            return nodes, nodes[label], rounds


def connected_components(edges: DataFrame, max_iterations: int = 50) -> tuple[DataFrame, int]:
    """(id, component) for every node that has an edge, component = the smallest id in it;
    and the number of rounds used. `edges` has columns src and dst (BIGINT)."""
    current = _normalise(edges).localCheckpoint(eager=True)
    previous = _fingerprint(current)
    rounds = 0
    while previous[0] > 0:
        if rounds >= max_iterations:
            raise UserError(f"connected components did not converge in dedup.max_cc_iterations = "
                            f"{max_iterations} rounds; raise it")
        rounds += 1
        nxt = small_star(large_star(current)).localCheckpoint(eager=True)
        fp = _fingerprint(nxt)
        log.info("[dedup] components round %d: %d edges", rounds, fp[0])
        current.unpersist()
        current = nxt
        if fp == previous:
            break
        previous = fp
    # Converged: every edge is (node, smallest id of its component).
    members = current.select(F.col("src").alias("id"), F.col("dst").alias("component"))
    roots = current.select(F.col("dst").alias("id"), F.col("dst").alias("component"))
    return members.unionByName(roots).distinct(), rounds
