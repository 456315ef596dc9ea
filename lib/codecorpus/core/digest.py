"""Order-independent digests of stage outputs, so two runs can be compared without caring how
Spark partitioned or named their files.

A Parquet folder's digest combines one 64-bit hash per row (xxhash64 over every column, in
column-name order) by an exact sum, an XOR and the row count: any change to any row changes it,
and no order, partitioning or file layout does. Other files are digested by their bytes.
"""
from __future__ import annotations

import hashlib

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from codecorpus.io import fs


def row_hash(df: DataFrame) -> Column:
    return F.xxhash64(*[F.col(c) for c in sorted(df.columns)])


def frame_digest(df: DataFrame) -> str:
    """`rows:sha256-prefix` of the rows' hashes, combined without regard to order."""
    h = row_hash(df)
    agg = df.agg(F.count(F.lit(1)).alias("n"), F.sum(h.cast("decimal(38,0)")).alias("s"),
                 F.bit_xor(h).alias("x")).first()
    combined = hashlib.sha256(f"{agg['n']}:{agg['s'] or 0}:{agg['x'] or 0}".encode()).hexdigest()[:16]
    return f"{agg['n']}:{combined}"


def file_digest(path: str) -> str:
    return "sha256:" + hashlib.sha256(fs.read_bytes(path)).hexdigest()[:16]


def location_digest(spark, name: str, path: str) -> str | None:
    """The digest of one compared location (None when the stage did not write it)."""
    from codecorpus.io import layout
    from codecorpus.io.parquet import read_parquet

    if not fs.exists(path):
        return None
    if name in layout.EXACT_FILES:
        return file_digest(path)
    return frame_digest(read_parquet(spark, path))


def output_digests(spark, io) -> dict[str, str]:
    """Digests of everything a finished stage published that runs are compared on."""
    from codecorpus.io import layout

    found = {n: location_digest(spark, n, io.final(n)) for n in layout.compared_locations(io.outputs)}
    return {n: d for n, d in found.items() if d is not None}


def config_digest(cfg) -> str:
    """The settings that shape outputs (the run root's own path left out)."""
    import json

    settings = {k: v for k, v in cfg.to_dict().items() if k != "output"}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def differing_ids(a: DataFrame, b: DataFrame, limit: int = 5) -> list:
    """A few ids of rows that are in one frame and not (identically) in the other."""
    ha = a.select("id", row_hash(a).alias("_h"))
    hb = b.select("id", row_hash(b).alias("_h"))
    diff = ha.join(hb, ["id", "_h"], "left_anti").unionByName(hb.join(ha, ["id", "_h"], "left_anti"))
    return [r["id"] for r in diff.select("id").distinct().orderBy("id").limit(limit).collect()]
