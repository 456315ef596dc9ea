"""The exact-duplicate key, and exact deduplication by it.

The key is the MD5 of the UTF-8 content with every whitespace character removed, as
codeparrot-clean computes it (`re.sub(r"\\s+", "", content)`), so variants that differ only in
indentation, line endings or Unicode spaces collapse. "Whitespace" is exactly Python's
`str.isspace()` set (what `\\s` matches in a Python `str` regex).

`stripped_hash` is the one definition. The clean stage calls it inside its measuring pass
(`features.measure`, which has the text in Python anyway); the stats stage calls it through
`content_hash_udf`. It stays in Python because Java's `\\s` is ASCII-only, and a Spark SQL
`translate()` over the listed code points measured about half as fast as this function over
Arrow batches, transfer included (bench/clean_reference.py keeps that twin for the parity test).

Of each group one representative is kept, chosen by a rank that does not depend on input order
or partitioning: files the policy filters keep (licence accepted, not opted out) first, then the
smallest `repo_name`, then `path`, then `id`. The kept row records the group size.
"""
from __future__ import annotations

import hashlib
import re
from typing import Iterator

import pyarrow as pa
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

# An ASCII file (most source) takes a bytes.translate() fast path; the regex handles the rest.
_ASCII_WHITESPACE = bytes(b for b in range(128) if chr(b).isspace())
_WHITESPACE = re.compile(r"\s+")  # on a str: exactly the str.isspace() characters


def stripped_hash(text: str) -> str:
    """Hex MD5 of the UTF-8 bytes of `text` with all whitespace removed: the duplicate key."""
    if text.isascii():
        data = text.encode("ascii").translate(None, _ASCII_WHITESPACE)
    else:
        data = _WHITESPACE.sub("", text).encode("utf-8")
    return hashlib.md5(data).hexdigest()


def content_hash_udf():
    """An Arrow UDF: string column -> `stripped_hash` of each value (null for null)."""
    from pyspark.sql.functions import arrow_udf

    def content_hash(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        for arr in batches:
            yield pa.array([None if t is None else stripped_hash(t) for t in arr.to_pylist()], pa.string())

    return arrow_udf(content_hash, "string")


def mark_duplicates(df: DataFrame, hash_col: Column, preferred: Column) -> DataFrame:
    """Adds `content_hash` (= hash_col), `dup_group_size` (files sharing the hash) and
    `is_duplicate` (true for every member but the representative). `preferred` (boolean) files
    rank first."""
    group = Window.partitionBy("content_hash")
    rank = F.struct(F.when(preferred, 0).otherwise(1).alias("policy_rank"), "repo_name", "path", "id")
    # Both aggregates use one unordered window: Spark sorts by the hash only, once.
    return (df.withColumn("content_hash", hash_col)
            .withColumn("_rank", rank)
            .withColumn("dup_group_size", F.count(F.lit(1)).over(group).cast("int"))
            .withColumn("is_duplicate", F.col("_rank") != F.min("_rank").over(group))
            .drop("_rank"))
