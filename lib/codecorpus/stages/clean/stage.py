"""Stage `clean`: ingest rows -> `clean/` (kept rows) and `rejects/` (dropped rows + drop_reason).

What is dropped and in which order is `filters.FILTERS` (its docstring explains the order); how
the decisions run is `transform.clean`. This module reads the rows and the driver-side inputs
(the opt-out list, benchmark strings and n-grams, the tokenizer's JSON), writes both outputs in
one pass, and counts. The counts' extra names the opt-out list by SHA-256 and line count (for the
dataset card) and gives the contaminated files by the method that found them.

Rows are accounted for: rows_in = rows_out + sum(dropped). The funnel (rows and bytes per
reason) is measured while the outputs are written (`DataFrame.observe`, `funnel.py`); licence
counts and the largest duplicate groups are then read from small columns of the written Parquet
(without rejects/, the largest groups are those of the kept files).
"""
from __future__ import annotations

import hashlib
import logging

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from codecorpus.core.config import Config
from codecorpus.core.errors import UserError
from codecorpus.core.stage import Counts, StageIO
from codecorpus.io import benchmarks, fs
from codecorpus.io.parquet import read_parquet, write_empty, write_parquet
from codecorpus.io.shards import TYPED_COLUMNS
from codecorpus.stages.clean import funnel
from codecorpus.stages.clean.decide import REASON
from codecorpus.stages.clean.decontam import benchmark_needles
from codecorpus.stages.clean.filters import Inputs, reasons
from codecorpus.stages.clean.ngrams import NgramItems, build_items, merge
from codecorpus.stages.clean.opt_out import OptOut
from codecorpus.stages.clean.opt_out import parse as parse_opt_out
from codecorpus.stages.clean.transform import TRANSIENT_COLUMNS, clean
from codecorpus.tokenizer.load import tokenizer_json as tokenizer_json_of

log = logging.getLogger("codecorpus")

NAME = "clean"
OUTPUTS = ("clean", "rejects")


# ------------------------------------------------------------------------- driver-side inputs

def _benchmark_records(c) -> list[tuple[str, list[dict]]]:
    out = []
    for name in c.decontaminate:
        try:
            out.append((name, benchmarks.records(name)))
        except UserError as exc:
            raise UserError(f"clean.decontaminate: {exc}") from None
    return out


def load_needles(c, loaded: list[tuple[str, list[dict]]] | None = None) -> tuple[list[str], dict]:
    """The exact method's normalised strings, and what the counts say about them."""
    needles: set[str] = set()
    skipped = 0
    for _, rows in loaded if loaded is not None else _benchmark_records(c):
        kept, short = benchmark_needles(rows, c.decontam_min_chars)
        needles.update(kept)
        skipped += short
    return sorted(needles), {"benchmarks": list(c.decontaminate), "strings": len(needles),
                             "skipped_short": skipped, "min_chars": c.decontam_min_chars}


def load_ngrams(c, loaded: list[tuple[str, list[dict]]] | None = None) -> tuple[NgramItems, dict]:
    """The n-gram method's benchmark items (each benchmark's names prefixed when there are
    several), and what the counts say about them."""
    loaded = loaded if loaded is not None else _benchmark_records(c)
    prefix = len(loaded) > 1
    parts = [build_items(rows, c.decontam_ngram, c.decontam_overlap, c.decontam_min_ngrams,
                         prefix=f"{name}:" if prefix else "") for name, rows in loaded]
    items = merge(parts)
    return items, {"n": c.decontam_ngram, "overlap": c.decontam_overlap, "min_ngrams": c.decontam_min_ngrams,
                   "items": len(items), "skipped_short": items.skipped_short,
                   "hashes": len({h for g in items.items for h in g})}


def load_decontamination(c) -> tuple[tuple[str, ...], NgramItems | None, dict]:
    """Needles and n-gram items for the configured methods, and the counts' description."""
    if not c.decontaminate or not c.decontam_methods:
        return (), None, {"benchmarks": [], "methods": []}
    loaded = _benchmark_records(c)
    methods = [m for m in ("exact", "ngram") if m in c.decontam_methods]
    needles, info = load_needles(c, loaded) if "exact" in methods else ([], {"benchmarks": list(c.decontaminate)})
    items = None
    if "ngram" in methods:
        items, info["ngram"] = load_ngrams(c, loaded)
    return tuple(needles), items, dict(info, methods=methods)


def load_opt_out(c) -> tuple[OptOut | None, dict]:
    """The parsed opt-out list, and its identity for the dataset card (SHA-256, lines)."""
    path = c.opt_out_file
    if not path:
        return None, {"file": None}
    try:
        data = fs.read_bytes(path)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else (exc.strerror or str(exc)).lower()
        raise UserError(f"clean.opt_out_file: cannot read {path}: {why}") from None
    listed = parse_opt_out(text, path)
    return listed, {"file": path, "sha256": hashlib.sha256(data).hexdigest(), "lines": listed.lines,
                    "repos": len(listed.repos), "globs": listed.n_globs}


def load_inputs(c) -> tuple[Inputs, dict]:
    """The filters' inputs, and what the counts say about opt-out and decontamination."""
    listed, opt_out_info = load_opt_out(c)
    needles, items, decontam_info = load_decontamination(c)
    tokenizer_json = (tokenizer_json_of(c.token_ratio_tokenizer, "clean.token_ratio_tokenizer")
                      if c.token_ratio_tokenizer else None)
    return (Inputs(c, needles, tokenizer_json, opt_out=listed, ngrams=items),
            {"opt_out": opt_out_info, "decontamination": decontam_info})


# ---------------------------------------------------------------------------------- writing

def write_outputs(spark: SparkSession, marked: DataFrame, io: StageIO, write_rejects: bool,
                  zstd_level: int = 1) -> None:
    """One pass writes both outputs (partitioned by destination); the folders are then moved
    into place. An output with no rows is still written, empty, so readers see its schema."""
    staged = (marked.withColumn("_out", F.when(F.col(REASON).isNull(), "clean").otherwise("rejects"))
              .drop(*TRANSIENT_COLUMNS))
    if not write_rejects:
        staged = staged.where(F.col("_out") == "clean")
    staging = io.output("clean") + "_all"
    write_parquet(staged, staging, split_by="_out", zstd_level=zstd_level)
    schema = staged.drop("_out").schema
    for name in OUTPUTS:
        part = f"{staging}/_out={name}"
        if fs.exists(part):
            fs.rename(part, io.output(name))
        elif name == "clean" or write_rejects:
            write_empty(spark, schema, io.output(name))
    fs.remove(staging)


# --------------------------------------------------------------------------------- counting

def license_counts(df: DataFrame) -> dict[str, int]:
    rows = df.groupBy("license").count().collect()
    return dict(sorted(((r["license"] or "null", r["count"]) for r in rows), key=lambda kv: (-kv[1], kv[0])))


def largest_groups(written: DataFrame, n: int) -> list[dict]:
    reps = written.where((F.col("dup_group_size") > 1) & funnel.representative())
    rows = (reps.select("content_hash", "dup_group_size", "repo_name", "path", "size", REASON)
            .orderBy(F.desc("dup_group_size"), "content_hash").limit(n).collect())
    return [{"content_hash": r["content_hash"], "files": r["dup_group_size"], "repo_name": r["repo_name"],
             "path": r["path"], "bytes": r["size"], "kept": r[REASON] is None} for r in rows]


def read_back(spark: SparkSession, io: StageIO, c) -> tuple[DataFrame, list[dict]]:
    """The kept rows, and the largest duplicate groups among the written rows."""
    kept = read_parquet(spark, io.output("clean"))
    written = kept.unionByName(read_parquet(spark, io.output("rejects"))) if c.write_rejects else kept
    return kept, largest_groups(written, c.top_groups)


# -------------------------------------------------------------------------------------- build

def build(spark: SparkSession, cfg: Config, io: StageIO) -> Counts:
    c = cfg.clean
    source = read_parquet(spark, io.input("rows")).select(*TYPED_COLUMNS)
    inp, info = load_inputs(c)
    names = reasons(inp)
    observation = Observation("clean_funnel")
    observed = clean(source, inp).observe(observation, *funnel.metrics(names), *funnel.decontamination_metrics())
    write_outputs(spark, observed, io, c.write_rejects, c.zstd_level)
    m = observation.get
    kept, largest = read_back(spark, io, c)
    extra = {
        "reasons": names,
        "funnel": funnel.steps(m, names),
        "duplicates": funnel.duplicates(m, largest),
        "licenses": {"before": license_counts(source), "after": license_counts(kept)},
        "secrets": funnel.secrets_found(m, c.secrets),
        "opt_out": info["opt_out"],
        "decontamination": dict(info["decontamination"], files=funnel.contamination_by_method(m)),
        "token_ratio": {"tokenizer": c.token_ratio_tokenizer or None, "min_token_ratio": c.min_token_ratio},
        "rejects_written": c.write_rejects,  # without rejects, largest_groups only sees kept files
    }
    log.info("[clean] kept %d of %d files (%.1f%% of bytes); duplicates %.1f%% of files", m["rows_out"],
             m["rows_in"], 100 * funnel.share(m["bytes_out"] or 0, m["bytes_in"] or 0),
             100 * extra["duplicates"]["share_files"])
    return Counts(stage=NAME, rows_in=m["rows_in"], rows_out=m["rows_out"], dropped=funnel.dropped(m, names),
                  extra=extra)
