"""The clean transform: ingest rows in, the same rows out with a `drop_reason` (null = kept).

Pure DataFrame -> DataFrame; the stage module does the reading, writing and counting. Three
steps: measure every file and mark exact duplicates (what every filter reads), decide
(`filters.FILTERS` in order, `decide.py`), then find and redact secrets.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from codecorpus.stages.clean import exact, filters, licenses, secrets
from codecorpus.stages.clean.decide import REASON, with_drop_reason
from codecorpus.stages.clean.features import features_udf
from codecorpus.stages.clean.filters import CONTAMINATED, FEATURES, Inputs, feature

CONTAM_METHOD = "_contam_method"

# Columns added to the ingest columns in both outputs.
ADDED_COLUMNS = ["content_hash", "dup_group_size", "secret_kind", "redactions", REASON]
# Helper columns the stage may aggregate before it writes (then drops them). `_contam_method`:
# which decontamination methods found a file the `contaminated` filter dropped (funnel counts).
TRANSIENT_COLUMNS = ["_bytes", "_secret_redactions", "_email_redactions", CONTAM_METHOD]


def clean(df: DataFrame, inp: Inputs) -> DataFrame:
    """`inp`: the CleanConfig and the driver-side inputs (benchmark needles, tokenizer)."""
    df = with_drop_reason(measured(df, inp), filters.active(inp), inp)
    df = redacted(df, inp.c)
    method = (F.when(F.col(REASON) == filters.CONTAMINATION.name, F.col(CONTAMINATED)) if CONTAMINATED in df.columns
              else F.lit(None).cast("string"))
    df = df.withColumn(CONTAM_METHOD, method)
    base = [col for col in df.columns if not col.startswith("_") and col not in ADDED_COLUMNS
            and col != "is_duplicate"]
    return df.select(*base, *ADDED_COLUMNS, *TRANSIENT_COLUMNS)


def measured(df: DataFrame, inp: Inputs) -> DataFrame:
    """Adds `_bytes`, the measurements struct and exact dedup's columns."""
    c, content = inp.c, F.col("content")
    # One pass over every file, whole Arrow batches at a time, measures what dedup and the
    # filters need (a small struct; `features.py`).
    measure = features_udf(c.scan_width, secrets.hint_table())
    df = df.withColumn("_bytes", F.octet_length(content)).withColumn(FEATURES, measure(content))
    # A group's representative is a copy the policy filters keep, when it has one.
    preferred = licenses.license_ok(c, F.col("license"))
    if filters.OPT_OUT.active(inp):
        preferred = preferred & ~filters.OPT_OUT.drop(inp)
    return exact.mark_duplicates(df, feature("content_hash"), preferred)


def _secret_kind(c, kept: Column) -> Column:
    """Which secret a file holds, looked for only where it matters: in files the secret filter
    dropped ("drop") or in kept files ("redact")."""
    content, hints = F.col("content"), feature("secret_hints")
    if c.secrets == "drop":
        return F.when(F.col(REASON) == filters.SECRET.name, secrets.secret_kind(content, hints))
    if c.secrets == "redact":
        return F.when(kept, secrets.secret_kind(content, hints))
    return F.lit(None).cast("string")


def redacted(df: DataFrame, c) -> DataFrame:
    """Adds `secret_kind` and `redactions`, and redacts `content`. Rejected files with secrets
    ("drop" mode) are redacted too, so the credentials are in neither output."""
    content, kept = F.col("content"), F.col(REASON).isNull()
    df = df.withColumn("secret_kind", _secret_kind(c, kept))
    has_kind = F.col("secret_kind").isNotNull()
    df = df.withColumn("_secret_redactions", F.when(has_kind, secrets.count_secrets(content)).otherwise(0))
    df = df.withColumn("content", F.when(has_kind, secrets.redact_secrets(content)).otherwise(content))
    if c.emails:
        maybe_email = kept & content.contains("@")  # the regex is slow; most files have no "@"
        df = df.withColumn("_email_redactions", F.when(maybe_email, secrets.count_emails(content)).otherwise(0))
        df = df.withColumn("content", F.when(kept & (F.col("_email_redactions") > 0),
                                             secrets.redact_emails(content)).otherwise(content))
    else:
        df = df.withColumn("_email_redactions", F.lit(0))
    return df.withColumn("redactions", (F.col("_secret_redactions") + F.col("_email_redactions")).cast("int"))
