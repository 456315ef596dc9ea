"""Running an ordered list of filters: one `drop_reason` column, the first failing filter's name.

The filters become flat CASE WHENs: a row stops at its first true branch, so later filters cost
nothing for rows already dropped. The list is split only where a filter needs a pass (a Python
UDF): the reason so far is written, the pass sees only the rows it left kept, and the next CASE
WHEN keeps any reason already set.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from codecorpus.stages.clean.filters import Filter, Inputs

REASON = "drop_reason"


def first_reason(branches: list[tuple[str, Column]], start: Column | None = None) -> Column:
    """`start` when it is set, else the name of the first true condition, else null."""
    expr = F.when(start.isNotNull(), start) if start is not None else None
    for name, cond in branches:
        expr = F.when(cond, F.lit(name)) if expr is None else expr.when(cond, F.lit(name))
    if expr is None:
        return start if start is not None else F.lit(None).cast("string")
    return expr.otherwise(F.lit(None).cast("string"))


def with_drop_reason(df: DataFrame, filters: list[Filter], inp: Inputs) -> DataFrame:
    """Adds `drop_reason` (null = kept) from `filters`, tested in list order."""
    branches: list[tuple[str, Column]] = []
    start = None
    for f in filters:
        if f.pass_ is not None:
            df = df.withColumn(REASON, first_reason(branches, start))
            df = f.pass_(df, inp, F.col(REASON).isNull())
            branches, start = [], F.col(REASON)
        branches.append((f.name, f.drop(inp)))
    return df.withColumn(REASON, first_reason(branches, start))
