"""Exact deduplication: files whose contents are equal once all whitespace is removed.

The key is the MD5 of the content with every whitespace character removed, as codeparrot-clean
computes it (`re.sub(r"\\s+", "", content)`), so variants that differ only in indentation or
line endings collapse. "Whitespace" is exactly Python's `str.isspace()` set (what `\\s`
matches in a Python `str` regex); the Spark SQL twin lists it, as Java's `\\s` is ASCII-only.

Of each group one representative is kept, chosen by a rank that does not depend on input order
or partitioning: files whose licence passes the licence policy first, then the smallest
`repo_name`, then `path`, then `id`. The kept row records the group size.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

# Code points for which Python's str.isspace() is true (tests check the list is complete).
WHITESPACE_CODEPOINTS = (
    0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680,
    *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
)
WHITESPACE = "".join(map(chr, WHITESPACE_CODEPOINTS))


def content_hash(content: Column) -> Column:
    """Hex MD5 of the UTF-8 bytes of `content` with all whitespace removed, in Spark SQL
    (the stage computes it in Python with the other measurements: `features.stripped_hash`)."""
    # translate() deletes characters that have no replacement; about twice as fast as a regex.
    return F.md5(F.translate(content, WHITESPACE, ""))


def mark_duplicates(df: DataFrame, hash_col: Column, preferred: Column) -> DataFrame:
    """Adds `content_hash` (= hash_col), `dup_group_size` (files sharing the hash) and
    `is_duplicate` (true for every member but the representative). `preferred` (boolean) files
    rank first."""
    group = Window.partitionBy("content_hash")
    rank = F.struct(F.when(preferred, 0).otherwise(1).alias("licence_rank"), "repo_name", "path", "id")
    # Both aggregates use one unordered window: Spark sorts by the hash only, once.
    return (df.withColumn("content_hash", hash_col)
            .withColumn("_rank", rank)
            .withColumn("dup_group_size", F.count(F.lit(1)).over(group).cast("int"))
            .withColumn("is_duplicate", F.col("_rank") != F.min("_rank").over(group))
            .drop("_rank"))
