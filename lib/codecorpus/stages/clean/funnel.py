"""The clean stage's figures, measured while the outputs are written (`DataFrame.observe`).

Every per-reason figure is derived from the list of reasons (`filters.reasons`), so a filter
added to `filters.FILTERS` is counted, in its place in the funnel, with nothing else to edit.
"""
from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from codecorpus.stages.clean.decide import REASON
from codecorpus.stages.clean.decontam import METHODS
from codecorpus.stages.clean.filters import EXACT_DUPLICATE
from codecorpus.stages.clean.secrets import SECRET_KINDS


def representative() -> Column:
    """The kept copy of a duplicate group (or a file without copies): not an exact duplicate,
    whatever later filter may have dropped it."""
    r = F.col(REASON)
    return r.isNull() | (r != EXACT_DUPLICATE.name)


def metrics(reasons: list[str]) -> list[Column]:
    """Aggregates for DataFrame.observe: rows and bytes in, per reason, out; duplicates; secrets."""
    r, b = F.col(REASON), F.col("_bytes")
    exprs = [F.count(F.lit(1)).alias("rows_in"), F.sum(b).alias("bytes_in"),
             F.count(F.when(r.isNull(), 1)).alias("rows_out"), F.sum(F.when(r.isNull(), b)).alias("bytes_out"),
             F.count(F.when((F.col("dup_group_size") > 1) & representative(), 1)).alias("dup_groups"),
             F.count(F.when(F.col("redactions") > 0, 1)).alias("redacted_files"),
             F.sum("_secret_redactions").alias("secret_redactions"),
             F.sum("_email_redactions").alias("email_redactions")]
    for reason in reasons:
        exprs += [F.count(F.when(r == reason, 1)).alias(f"rows:{reason}"),
                  F.sum(F.when(r == reason, b)).alias(f"bytes:{reason}")]
    for kind in SECRET_KINDS:
        exprs.append(F.count(F.when(F.col("secret_kind") == kind, 1)).alias(f"secret:{kind}"))
    return exprs


def decontamination_metrics(method_col: str = "_contam_method") -> list[Column]:
    """Files the `contaminated` filter dropped, by the methods that found them: each method's
    count, and the files only n-gram matching found (what it adds to exact substrings)."""
    m = F.col(method_col)
    exprs = [F.count(F.when(F.array_contains(F.split(m, "[+]"), x), 1)).alias(f"contaminated:{x}")
             for x in METHODS]
    return exprs + [F.count(F.when(m == "ngram", 1)).alias("contaminated:ngram_only")]


def contamination_by_method(m: dict) -> dict[str, int]:
    return {x: m[f"contaminated:{x}"] for x in (*METHODS, "ngram_only")}


def dropped(m: dict, reasons: list[str]) -> dict[str, int]:
    return {r: m[f"rows:{r}"] for r in reasons}


def steps(m: dict, reasons: list[str]) -> list[dict]:
    """The funnel: files and bytes in, dropped per reason in the order tested, out."""
    return ([{"step": "in", "rows": m["rows_in"], "bytes": m["bytes_in"] or 0}]
            + [{"step": r, "rows": m[f"rows:{r}"], "bytes": m[f"bytes:{r}"] or 0} for r in reasons]
            + [{"step": "out", "rows": m["rows_out"], "bytes": m["bytes_out"] or 0}])


def share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def duplicates(m: dict, largest_groups: list[dict]) -> dict:
    rows_in, bytes_in = m["rows_in"], m["bytes_in"] or 0
    files, nbytes = m[f"rows:{EXACT_DUPLICATE.name}"], m[f"bytes:{EXACT_DUPLICATE.name}"] or 0
    return {"files": files, "bytes": nbytes, "share_files": share(files, rows_in),
            "share_bytes": share(nbytes, bytes_in), "distinct_contents": rows_in - files,
            "groups_with_copies": m["dup_groups"], "largest_groups": largest_groups}


def secrets_found(m: dict, mode: str) -> dict:
    return {"mode": mode, "files_by_kind": {k: m[f"secret:{k}"] for k in SECRET_KINDS},
            "redacted_files": m["redacted_files"], "secret_redactions": m["secret_redactions"] or 0,
            "email_redactions": m["email_redactions"] or 0}
