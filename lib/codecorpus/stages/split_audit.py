"""Cross-split leakage: train/valid pairs of exact or near-duplicate files, and the links that
keep such files on one side.

Near-duplicates are found as the dedup stage finds them (its MinHash signatures and LSH band
keys, with its settings), then verified by the exact Jaccard similarity of the two files'
shingle sets (the dedup stage's shingles) against dedup.threshold. Exact duplicates share the
clean stage's exact-duplicate key (`content_hash_udf`; taken from the rows where clean recorded
it for the same content, `exact_key`). Files with fewer than dedup.min_tokens
tokens are in neither check: the dedup stage never compares them, and two repositories' empty
`__init__.py` leak nothing.

Files with the same exact-duplicate key form a *class*, compared once through its smallest id:
n copies in one LSH bucket would otherwise cost n^2 candidate pairs. Counts are still of file
pairs: classes A and B with (train, valid) members (tA, vA) and (tB, vB) make tA*vB + vA*tB
train/valid pairs, and class A alone tA*vA exact ones.

Every file has a `node` (BIGINT): its repository's hash when the split is by repository, else
its id. Links join nodes; two classes that lie wholly in one node (one repository) can never
straddle the split, so their pairs are not verified.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from codecorpus.stages.clean.exact import content_hash_udf
from codecorpus.stages.dedup.clusters import signature_frame
from codecorpus.stages.dedup.minhash import MinHashParams
from codecorpus.stages.dedup.shingles import shingle_hashes, token_hashes, tokens

SHINGLES_DDL = "id BIGINT, shingles ARRAY<BIGINT>"
# Files per Arrow batch of shingle sets: keeps a batch's list offsets far below 2^31 even for
# the largest files ingest lets through.
_FILES_PER_BATCH = 64


@dataclass(frozen=True)
class Audit:
    files: DataFrame  # (id, node, chash, keys): every file the dedup stage would hash
    classes: DataFrame  # (chash, rep, node_lo, node_hi): exact-duplicate classes
    near: DataFrame  # (a, b, jaccard): near-duplicate class pairs, by representative, a < b
    facts: dict


def shingle_batches(batches: Iterator[pa.RecordBatch], ngram: int) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: (id, content) -> (id, sorted unique shingle hashes as BIGINT)."""
    for batch in batches:
        ids = batch.column("id").to_numpy(zero_copy_only=False)
        texts = batch.column("content").to_pylist()
        for lo in range(0, len(texts), _FILES_PER_BATCH):
            sets = [shingle_hashes(token_hashes(tokens(t)), ngram).view(np.int64)
                    for t in texts[lo:lo + _FILES_PER_BATCH]]
            offsets = np.concatenate(([0], np.cumsum([len(s) for s in sets]))).astype(np.int32)
            values = np.concatenate(sets) if sets else np.empty(0, np.int64)
            yield pa.RecordBatch.from_arrays(
                [pa.array(ids[lo:lo + _FILES_PER_BATCH], pa.int64()),
                 pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, pa.int64()))],
                names=["id", "shingles"])


def hashed_files(docs: DataFrame, params: MinHashParams, min_partitions: int,
                 keys: DataFrame | None = None) -> DataFrame:
    """(id, node, chash, keys) of every file with at least `min_tokens` tokens; `keys` (id, keys)
    are the dedup stage's band keys of these files, hashed here when not given."""
    sigs = keys if keys is not None else signature_frame(docs, params, min_partitions).where(F.col("keys").isNotNull())
    return (docs.select("id", "node", exact_key(docs).alias("chash")).join(sigs.select("id", "keys"), "id")
            .select("id", "node", "chash", "keys"))


def exact_key(docs: DataFrame) -> Column:
    """Each file's exact-duplicate key, of its content as it is now. Rows from the clean stage
    carry the key of the content clean read (`content_hash`); where clean redacted nothing that
    is this content's key, so only redacted files (and rows without it) are hashed again here."""
    content_hash = content_hash_udf()
    if not {"content_hash", "redactions"} <= set(docs.columns):
        return content_hash("content")
    changed = F.col("redactions") != 0
    # The UDF sees null for the unchanged files: their text never crosses to Python.
    return F.when(changed, content_hash(F.when(changed, F.col("content")))).otherwise(F.col("content_hash"))


def duplicate_classes(files: DataFrame) -> DataFrame:
    """(chash, rep, keys, node_lo, node_hi): rep is the class's smallest id, keys its bands."""
    return files.groupBy("chash").agg(F.min("id").alias("rep"), F.min_by("keys", "id").alias("keys"),
                                      F.min("node").alias("node_lo"), F.max("node").alias("node_hi"))


def candidate_pairs(classes: DataFrame) -> DataFrame:
    """(a, b), a < b: representatives sharing an LSH bucket whose classes are not both wholly
    inside one and the same node."""
    buckets = classes.select("rep", "node_lo", "node_hi", F.posexplode("keys").alias("band", "key"))
    left, right = buckets.alias("l"), buckets.alias("r")
    one_node = ((F.col("l.node_lo") == F.col("l.node_hi")) & (F.col("r.node_lo") == F.col("r.node_hi"))
                & (F.col("l.node_lo") == F.col("r.node_lo")))
    same_bucket = [F.col("l.band") == F.col("r.band"), F.col("l.key") == F.col("r.key"),
                   F.col("l.rep") < F.col("r.rep")]
    return (left.join(right, same_bucket).where(~one_node)
            .select(F.col("l.rep").alias("a"), F.col("r.rep").alias("b")).distinct())


def verified_pairs(pairs: DataFrame, docs: DataFrame, ngram: int, threshold: float) -> DataFrame:
    """(a, b, jaccard) of the candidate pairs whose exact shingle-set Jaccard similarity
    reaches `threshold`; only the files in some pair are shingled."""
    ends = pairs.select(F.col("a").alias("id")).unionByName(pairs.select(F.col("b").alias("id"))).distinct()
    sets = (docs.select("id", "content").join(ends, "id")
            .mapInArrow(lambda it: shingle_batches(it, ngram), SHINGLES_DDL).localCheckpoint(eager=True))
    inter = F.size(F.array_intersect("sa", "sb"))
    jaccard = inter / (F.size("sa") + F.size("sb") - inter)
    return (pairs.join(sets.select(F.col("id").alias("a"), F.col("shingles").alias("sa")), "a")
            .join(sets.select(F.col("id").alias("b"), F.col("shingles").alias("sb")), "b")
            .withColumn("jaccard", jaccard.cast("double"))
            .where(F.col("jaccard") >= F.lit(threshold)).select("a", "b", "jaccard"))


def prepare(docs: DataFrame, params: MinHashParams, threshold: float, min_partitions: int,
            keys: DataFrame | None = None) -> Audit:
    """Everything the audit needs that does not depend on the assignment, computed once.
    `docs` has id, node and content; `keys` as in hashed_files."""
    files = hashed_files(docs, params, min_partitions, keys).localCheckpoint(eager=True)
    classes = duplicate_classes(files).localCheckpoint(eager=True)
    pairs = candidate_pairs(classes).localCheckpoint(eager=True)
    near = verified_pairs(pairs, docs, params.ngram, threshold).localCheckpoint(eager=True)
    facts = {"files_checked": files.count(), "duplicate_classes": classes.count(),
             "candidate_pairs": pairs.count(), "verified_pairs": near.count()}
    return Audit(files, classes, near, facts)


def links(audit: Audit) -> DataFrame:
    """(src, dst) node pairs that must share a side: each file to its class's first node, and
    the first nodes of every near-duplicate class pair."""
    first = audit.classes.select("chash", "rep", "node_lo")
    copies = (audit.files.join(first, "chash").where(F.col("node") != F.col("node_lo"))
              .select(F.col("node").alias("src"), F.col("node_lo").alias("dst")))
    near = (audit.near.join(first.select(F.col("rep").alias("a"), F.col("node_lo").alias("src")), "a")
            .join(first.select(F.col("rep").alias("b"), F.col("node_lo").alias("dst")), "b"))
    return copies.unionByName(near.select("src", "dst"))


def class_sides(audit: Audit, sides: DataFrame) -> DataFrame:
    """(rep, t, v, train_id, valid_id) per class: its train and valid members and the smallest
    id on each side, once every file has a side (`sides`: id, split)."""
    train, valid = F.col("split") == "train", F.col("split") == "valid"
    return (audit.files.select("id", "chash").join(sides, "id").groupBy("chash").agg(
        F.min("id").alias("rep"),
        F.sum(F.when(train, 1).otherwise(0)).alias("t"), F.sum(F.when(valid, 1).otherwise(0)).alias("v"),
        F.min(F.when(train, F.col("id"))).alias("train_id"), F.min(F.when(valid, F.col("id"))).alias("valid_id")))


def cross_split(audit: Audit, sides: DataFrame) -> DataFrame:
    """(kind, pairs, jaccard, train_id, valid_id): a row per class ("exact") or near-duplicate
    class pair ("near") with train/valid file pairs; `pairs` counts them, the ids name one."""
    per = class_sides(audit, sides).localCheckpoint(eager=True)
    exact = per.where((F.col("t") > 0) & (F.col("v") > 0)).select(
        F.lit("exact").alias("kind"), (F.col("t") * F.col("v")).alias("pairs"), F.lit(1.0).alias("jaccard"),
        "train_id", "valid_id")
    a = per.select(F.col("rep").alias("a"), F.col("t").alias("ta"), F.col("v").alias("va"),
                   F.col("train_id").alias("a_train"), F.col("valid_id").alias("a_valid"))
    b = per.select(F.col("rep").alias("b"), F.col("t").alias("tb"), F.col("v").alias("vb"),
                   F.col("train_id").alias("b_train"), F.col("valid_id").alias("b_valid"))
    a_train_b_valid = (F.col("ta") > 0) & (F.col("vb") > 0)
    near = (audit.near.join(a, "a").join(b, "b")
            .withColumn("pairs", F.col("ta") * F.col("vb") + F.col("va") * F.col("tb"))
            .where(F.col("pairs") > 0)
            .select(F.lit("near").alias("kind"), "pairs", "jaccard",
                    F.when(a_train_b_valid, F.col("a_train")).otherwise(F.col("b_train")).alias("train_id"),
                    F.when(a_train_b_valid, F.col("b_valid")).otherwise(F.col("a_valid")).alias("valid_id")))
    return exact.unionByName(near)


def summarize(leaks: DataFrame, docs: DataFrame, limit: int) -> dict:
    """Totals of train/valid file pairs by kind, and the `limit` most similar pairs with their
    files' repository and path (the only rows collected)."""
    leaks = leaks.localCheckpoint(eager=True)

    def total(kind: str):
        return F.coalesce(F.sum(F.when(F.col("kind") == kind, F.col("pairs"))), F.lit(0)).alias(kind)

    totals = leaks.agg(total("exact"), total("near")).first()
    top = leaks.orderBy(F.desc("jaccard"), "kind", "train_id", "valid_id").limit(limit).collect()
    ids = sorted({r[k] for r in top for k in ("train_id", "valid_id")})
    named = {r["id"]: r for r in docs.where(F.col("id").isin(ids)).select("id", "repo_name", "path").collect()}

    def file(i: int) -> dict:
        return {"id": i, "repo_name": named[i]["repo_name"], "path": named[i]["path"]}

    listed = [{"kind": r["kind"], "jaccard": round(r["jaccard"], 4), "file_pairs": r["pairs"],
               "train": file(r["train_id"]), "valid": file(r["valid_id"])} for r in top]
    return {"pairs": totals["exact"] + totals["near"], "exact_pairs": totals["exact"],
            "near_pairs": totals["near"], "listed": listed}


def fail_message(found: dict) -> str:
    """One line naming the most similar pair, for split.leakage = "fail"."""
    p = found["listed"][0]
    where = {s: f"{p[s]['repo_name']}/{p[s]['path']} (id {p[s]['id']})" for s in ("train", "valid")}
    line = (f'split.leakage = "fail": {found["pairs"]:,} train/valid file pair(s) are duplicates, e.g. train '
            f'{where["train"]} and valid {where["valid"]} ({p["kind"]}, Jaccard {p["jaccard"]}); '
            'split.leakage = "group" keeps such files on one side')
    return " ".join(line.split())
