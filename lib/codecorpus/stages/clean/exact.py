"""The exact-duplicate key, and exact deduplication by it.

The key is the MD5 of the UTF-8 content with every whitespace character removed, as
codeparrot-clean computes it (`re.sub(r"\\s+", "", content)`), so variants that differ only in
indentation, line endings or Unicode spaces collapse. "Whitespace" is exactly Python's
`str.isspace()` set (what `\\s` matches in a Python `str` regex).

`content_hashes` is the one definition, over a whole Arrow string array. It is computed by the
compiled measuring pass (native/measure.c: the bytes fed to its own MD5 as they are scanned,
whitespace left out), and where that is not built, straight from the array's UTF-8 buffer: the
ASCII whitespace bytes go with one `bytes.translate` per file and the multi-byte whitespace
characters (in files that have non-ASCII bytes) with `bytes.replace`, then hashlib's MD5 (tests
pin both to `hashlib.md5(re.sub(r"\\s+", "", content))`). A Spark SQL `translate()` + `md5`
measured slower than either, transfer included (bench/clean_reference.py keeps that twin for the
parity test). The clean stage takes the key from its measuring pass (`features.py`); the stats
stage and the split audit call it through `content_hash_udf`.

Of each group one representative is kept, chosen by a rank that does not depend on input order
or partitioning: files the policy filters keep (licence accepted, not opted out) first, then the
smallest `repo_name`, then `path`, then `id`. The kept row records the group size.
"""
from __future__ import annotations

import hashlib
from typing import Iterator

import pyarrow as pa
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from codecorpus.stages.clean import native_measure
from codecorpus.stages.clean.utf8 import Utf8Batch, with_nulls

_ASCII_WHITESPACE = bytes(b for b in range(128) if chr(b).isspace())


def _stripped(data: bytes, multibyte: list[bytes]) -> bytes:
    """`data` without whitespace; `multibyte`: the non-ASCII whitespace characters it may hold.
    Removing one never joins bytes into a new one: in valid UTF-8 a match starts at a lead byte."""
    data = data.translate(None, _ASCII_WHITESPACE)
    for seq in multibyte:
        data = data.replace(seq, b"")
    return data


def content_hashes(arr: pa.Array) -> pa.Array:
    """Hex MD5 of each value's UTF-8 bytes with all whitespace removed (null for null): the key."""
    u = Utf8Batch(arr)
    native = native_measure.run(u, 0)
    if native is not None:
        return with_nulls(native[1], u.valid)
    raw, offsets = u.data.tobytes(), u.offsets.tolist()
    at, chars = u.where(str.isspace)
    multibyte = [ch.encode() for ch in chars]
    spaced = (u.count_per_row(at) > 0).tolist()  # files with a non-ASCII whitespace character
    valid = u.valid.tolist() if u.valid is not None else [True] * u.n
    return pa.array([hashlib.md5(_stripped(raw[offsets[i]:offsets[i + 1]], multibyte if spaced[i] else [])
                                 ).hexdigest() if valid[i] else None for i in range(u.n)], pa.string())


def stripped_hash(text: str) -> str:
    """`content_hashes` of one text."""
    return content_hashes(pa.array([text], pa.string()))[0].as_py()


def content_hash_udf():
    """An Arrow UDF: string column -> `content_hashes` (null for null)."""
    from pyspark.sql.functions import arrow_udf

    def content_hash(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        for arr in batches:
            yield content_hashes(arr)

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
