"""Throughput of the clean stage (MB/s of content) next to the book's way of running the same
filters (Hugging Face `datasets` `map`/`filter` with `num_proc`), on the same rows, in the same
run, and whether both keep exactly the same files.

Ours: the whole stage under Spark (`--master` cores) on the rows written as ingest writes them
(zstd Parquet, row groups of ingest's size): one Arrow pass measuring every file over whole
batches, exact dedup (one shuffle), licence/quality/secret decisions in SQL, the decontamination
pass (exact substrings and token n-grams) over Arrow batches, both outputs written as Parquet.
Theirs: `load_dataset("parquet")` of the same rows, `map(measure, num_proc)` with
CodeParrot's per-example functions (`np.mean` of `isalnum` per character, per-line loops), a
deterministic representative per hash (the same rank as ours, computed on the driver: the
original's first-seen `uniques` set is neither deterministic nor correct with num_proc > 1),
`filter(keep, num_proc)` with the same thresholds, seeded draws, licence policy, secret regexes
(Python `re`) and a plain every-string-against-every-file decontamination (exact substrings
only: it has no n-gram matching, so it does less than ours), then the kept rows written as
Parquet.

Also measured once, on a sample (`--parts-sample`, 0 = skip): the measurements over whole
batches against the same file by file in Python and as Spark SQL expressions, part by part with
the filters each part serves; the decontamination matchers against the plain loop. With
`--passes`, the stage is also built up pass by pass (where its wall time goes). The reference
twins (per-file and SQL features, Python draws and licence policy, the plain loop) are in
bench/clean_reference.py.

    .venv/bin/python bench/clean.py --input /tmp/me/out/ingest [--limit 5000] [--repeats 1]
        [--master local[2]] [--num-proc 2] [--passes] [--json out.json]
"""
from __future__ import annotations

import argparse  # noqa: E402
import hashlib  # noqa: E402
import os
import re  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402

from _common import ROOT, emit, load_table, tree_cpu_seconds  # noqa: E402  (puts lib/ on the path)

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

# ------------------------------------------------------------------------------ shared helpers


# -------------------------------------------------------------------------------------- ours

def write_rows(table: pa.Table, root: str, row_group_rows: int) -> None:
    """The rows as the stage finds them after ingest: zstd Parquet in row groups of ingest's size
    (one row group of the whole table would be one Spark task, one core, for the first pass)."""
    os.makedirs(f"{root}/ingest")
    pq.write_table(table, f"{root}/ingest/part-0.parquet", compression="zstd", row_group_size=row_group_rows)



def spark_session(master: str):
    from codecorpus.core.spark import local_session, spark_defaults

    return local_session("bench-clean", master, spark_defaults())  # as spark-submit.sh


def run_ours(spark, root: str, overrides: list[str]) -> dict:
    from codecorpus.core.config import load_config
    from codecorpus.core.registry import run_one

    cfg = load_config(None, [f"output={root}", *overrides])
    jvm = spark.sparkContext._gateway.proc.pid  # local mode: executors and Python workers live under it
    cpu_before, started = tree_cpu_seconds(jvm), time.perf_counter()
    counts = run_one(spark, cfg, "clean", force=True)
    seconds = time.perf_counter() - started
    cpu = tree_cpu_seconds(jvm) - cpu_before
    kept = spark.read.parquet(f"{root}/clean").select("id").toPandas()["id"].tolist()
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 1), "kept": len(kept),
            "dropped": counts.dropped, "kept_ids": sorted(kept)}


# ------------------------------------------------------------------------------ theirs (book)

# The per-example functions in the style of CodeParrot's preprocessing.py (row at a time).

def _line_stats(text):
    lengths = [len(line) for line in text.splitlines()]
    if not lengths:  # the original crashes on max([]); ours: an empty file has 0
        return 0, 0.0
    return max(lengths), float(np.mean(lengths))


def _alpha_frac(text):
    return float(np.mean([ch.isalnum() for ch in text])) if text else float("nan")


def _first_lines_contain(text, markers, width):
    for _, line in zip(range(width), text.splitlines()):
        low = line.lower()
        if any(m in low for m in markers):
            return True
    return False


def _config_or_test(text, width, coeff):
    if _first_lines_contain(text, ("unit tests", "test file", "configuration file"), width):
        return True
    threshold = int(coeff * text.count("\n"))
    n_config = n_test = 0
    for line in text.splitlines():
        low = line.lower()
        n_config += low.count("config")
        n_test += low.count("test")
        if n_config > threshold or n_test > threshold:
            return True
    return False


def _has_no_keywords(text):
    for line in text.splitlines():
        low = line.lower()
        if any(k in low for k in ("def ", "class ", "for ", "while ")):
            return False
    return True


def _few_assignments(text, minimum):
    n = 0
    for line in text.splitlines():
        n += line.count("=")
        if n >= minimum:
            return False
    return True


def measure_example(example, width, coeff, min_assign):
    text = example["content"]
    line_max, line_mean = _line_stats(text)
    return {"hash": hashlib.md5(re.sub(r"\s+", "", text).encode("utf-8")).hexdigest(),
            "line_max": line_max, "line_mean": line_mean, "alpha_frac": _alpha_frac(text),
            "autogenerated": _first_lines_contain(text, ("auto-generated", "autogenerated",
                                                         "automatically generated"), width),
            "config_or_test": _config_or_test(text, width, coeff),
            "has_no_keywords": _has_no_keywords(text),
            "has_few_assignments": _few_assignments(text, min_assign)}


def keep_example(example, keepers, c, needles, secret_patterns):
    from clean_reference import file_uniform_py, license_ok_py, naive_contains_any

    fid, text = example["id"], example["content"]
    if fid not in keepers or not license_ok_py(c, example["license"]):
        return False
    if example["autogenerated"] or example["line_max"] > c.line_max or example["line_mean"] > c.line_mean:
        return False
    if example["alpha_frac"] < c.alpha_frac:  # NaN (empty file) compares false: kept, as in the original
        return False
    if example["config_or_test"] and file_uniform_py(c.seed, "config_or_test", fid) < c.config_or_test_prob:
        return False
    if example["has_no_keywords"] and file_uniform_py(c.seed, "has_no_keywords", fid) < c.no_keywords_prob:
        return False
    if example["has_few_assignments"]:
        return False
    if c.secrets == "drop" and any(p.search(text) for p in secret_patterns):
        return False
    return not (needles and naive_contains_any(needles, text))


def run_theirs(table: pa.Table, work: str, overrides: list[str], num_proc: int) -> dict:
    import datasets
    from clean_reference import license_ok_py
    from codecorpus.core.config import load_config
    from codecorpus.stages.clean.secrets import SECRET_PATTERNS, python_pattern
    from codecorpus.stages.clean.stage import load_needles

    datasets.disable_progress_bars()
    c = load_config(None, overrides).clean
    needles = load_needles(c)[0] if c.decontaminate else []
    if c.token_ratio_tokenizer:
        raise SystemExit("the book-style peer here has no token_ratio filter: leave clean.token_ratio_tokenizer unset")
    if c.emails or c.secrets == "redact":
        raise SystemExit("compare kept sets with clean.secrets=drop and emails off")
    src = f"{work}/input.parquet"
    pq.write_table(table, src)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_before = time.process_time() + usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    ds = datasets.load_dataset("parquet", data_files=src, split="train", cache_dir=f"{work}/hf-cache")
    ds = ds.map(measure_example, num_proc=num_proc,
                fn_kwargs={"width": c.scan_width, "coeff": c.config_or_test_coeff, "min_assign": c.min_assignments})
    # One representative per hash, by the same rank as ours (permissive licence, repo, path, id).
    meta = ds.select_columns(["hash", "license", "repo_name", "path", "id"]).to_pandas()
    meta["rank"] = [0 if license_ok_py(c, v) else 1 for v in meta["license"]]
    keepers = set(meta.sort_values(["hash", "rank", "repo_name", "path", "id"])
                  .drop_duplicates("hash")["id"].tolist())
    patterns = [re.compile(python_pattern(p.pattern)) for p in SECRET_PATTERNS]
    kept = ds.filter(keep_example, num_proc=num_proc,
                     fn_kwargs={"keepers": keepers, "c": c, "needles": needles, "secret_patterns": patterns})
    kept.to_parquet(f"{work}/kept.parquet")
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() + usage.ru_utime + usage.ru_stime - cpu_before
    ids = sorted(kept["id"])
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 1), "kept": len(ids), "kept_ids": ids}


# ----------------------------------------------------------------------------- the two parts


def _batches(arr: pa.Array, rows: int = 2048) -> list[pa.Array]:
    return [arr.slice(i, rows) for i in range(0, len(arr), rows)]


def _cpu(fn) -> float:
    started = time.process_time()
    fn()
    return time.process_time() - started


def feature_components(batches: list[pa.Array], scan_width: int) -> dict[str, float]:
    """CPU seconds of each part of `features.measure_array` over the batches, in one process, and
    of the whole, with the compiled pass (native/measure.c) and without it (the numpy and hashlib
    paths); the filters each part serves in brackets."""
    import pyarrow.compute as pc
    from codecorpus.core import native
    from codecorpus.stages.clean import exact, features, native_measure, secrets
    from codecorpus.stages.clean.utf8 import Utf8Batch

    hints = features.Hints(secrets.hint_table())

    def lines(arr):
        u = Utf8Batch(arr)
        breaks, _ = features.breaks_and_equals(u)
        rows = u.rows_of(breaks)
        second = features.crlf_second(u, breaks, rows)
        features.line_stats(u, breaks, rows, second)
        return u, breaks[~second], rows[~second]

    line_ends: dict[int, object] = {}  # the compiled pass's first-line ends, found before the timing

    def markers(arr):
        u = Utf8Batch(arr)
        head = pc.ascii_lower(features.heads(u, line_ends[id(arr)]))
        for found in (features.AUTOGENERATED_MARKERS, features.CONFIG_OR_TEST_MARKERS):
            pc.match_substring_regex(head, features.literal_pattern(found))

    def lowered(arr):
        lower = pc.ascii_lower(arr)
        for word in features.COUNTED:
            pc.count_substring_regex(lower, word)
        pc.match_substring_regex(lower, features.literal_pattern(features.KEYWORDS))

    def numpy_path(fn):
        def run(arr):
            with native.disabled():
                return fn(arr)
        return run

    parts = {}
    if native.function("measure") is not None:
        line_ends.update((id(b), native_measure.run(Utf8Batch(b), scan_width)[0]["head_end"]) for b in batches)
        parts.update({
            "compiled pass: lines, '=', alphanumerics, lower-cased counts and keywords, the first lines' end, "
            "exact key (all but secret)": lambda arr: native_measure.run(Utf8Batch(arr), scan_width),
            "first lines' markers, from the compiled pass's line ends (autogenerated, config_or_test)": markers,
        })
    parts.update({
        "secret hints (secret)": hints.lists,
        "whole measure_array": lambda arr: features.measure_array(arr, scan_width, hints),
        "without the compiled pass: exact key, strip whitespace + hashlib MD5 (exact_duplicate)":
            numpy_path(exact.content_hashes),
        "without the compiled pass: line breaks, lengths, '=' (line_max, line_mean, few_assignments)": lines,
        "without the compiled pass: alphanumerics (alpha_frac)":
            lambda arr: (features.alnum_counts(Utf8Batch(arr)), pc.utf8_length(arr)),
        "without the compiled pass: lower-cased counts and keywords (config_or_test, has_no_keywords)": lowered,
        "without the compiled pass: whole measure_array (numpy, hashlib)":
            numpy_path(lambda arr: features.measure_array(arr, scan_width, hints)),
    })
    return {name: round(_cpu(lambda: [fn(b) for b in batches]), 2) for name, fn in parts.items()}


def _lengths_udf():
    """An Arrow UDF that only returns each text's length: what moving the text to Python costs."""
    import pyarrow.compute as pc
    from pyspark.sql.functions import arrow_udf

    def lengths(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        for arr in batches:
            yield pc.binary_length(arr)

    return arrow_udf(lengths, "int")


def measure_parts(spark, table: pa.Table, overrides: list[str], sample: int) -> dict:
    """On a sample, in one process (CPU seconds): the measurements over whole Arrow batches
    against the same file by file in Python (as preprocessing.py), and part by part; through
    Spark (wall): the Arrow UDF against the same measurements as Spark SQL; the decontamination
    matchers against the plain every-needle-against-every-file loop."""
    from clean_reference import naive_contains_any, python_measure, sql_features
    from codecorpus.core.config import load_config
    from codecorpus.stages.clean import secrets
    from codecorpus.stages.clean.decontam import Matcher
    from codecorpus.stages.clean.features import features_udf
    from codecorpus.stages.clean.ngrams import NgramMatcher
    from codecorpus.stages.clean.stage import load_decontamination
    from pyspark.sql import functions as F

    c = load_config(None, overrides).clean
    part = table.slice(0, sample).select(["id", "content"])
    content = part.column("content").combine_chunks()
    texts = content.to_pylist()
    mb = sum(len(t.encode()) for t in texts) / 1e6
    batches = _batches(content)
    out = {"sample_files": part.num_rows, "sample_mb": round(mb, 1)}
    comp = feature_components(batches, c.scan_width)
    out["features_batch_mb_s"] = round(mb / comp["whole measure_array"], 2)
    hints = secrets.hint_table()
    out["features_per_file_python_mb_s"] = round(mb / _cpu(lambda: [python_measure(t, c.scan_width, hints)
                                                                    for t in texts]), 2)
    out["features_cpu_s_by_part"] = comp
    df = spark.createDataFrame(part.to_pandas()).repartition(2).cache()
    df.count()
    for name, col in (("features_arrow_udf", features_udf(c.scan_width, secrets.hint_table())(F.col("content"))),
                      ("transfer_only_arrow_udf", _lengths_udf()(F.col("content"))),
                      ("features_spark_sql", sql_features(F.col("content"), c.scan_width))):
        started = time.perf_counter()
        df.select(col.alias("f")).write.format("noop").mode("overwrite").save()
        out[f"{name}_mb_s"] = round(mb / (time.perf_counter() - started), 2)
    df.unpersist()
    needles, items, _ = load_decontamination(c)
    matcher = Matcher(needles)

    def exact_found():
        found = []
        for arr in batches:
            maybe = matcher.candidates(arr)
            found += [bool(m) and matcher.contains_any(t) for t, m in zip(arr.to_pylist(), maybe.tolist())]
        return found

    found = []
    out["decontam_exact_mb_s"] = round(mb / _cpu(lambda: found.extend(exact_found())), 2)
    plain = []
    out["decontam_plain_mb_s"] = round(mb / _cpu(lambda: plain.extend(naive_contains_any(needles, t)
                                                                      for t in texts)), 2)
    out["decontam_same_answers"] = found == plain
    if items:
        ngram = NgramMatcher(items)
        out["decontam_ngram_mb_s"] = round(mb / _cpu(lambda: [ngram.first_matches(b) for b in batches]), 2)
    return out


def measure_passes(spark, root: str, overrides: list[str]) -> dict[str, float]:
    """Where the stage's wall time goes: the transform built up pass by pass over the run's
    rows, each step written to Spark's no-op sink (best of two, after a warm-up), then the whole
    stage with its Parquet writes and counts. The differences between steps are the passes."""
    from codecorpus.core.config import load_config
    from codecorpus.core.registry import run_one
    from codecorpus.io.shards import TYPED_COLUMNS
    from codecorpus.stages.clean import secrets, transform
    from codecorpus.stages.clean.features import features_udf
    from codecorpus.stages.clean.stage import load_inputs
    from pyspark.sql import functions as F

    src = spark.read.parquet(f"{root}/ingest").select(*TYPED_COLUMNS)

    def inp(*more):
        return load_inputs(load_config(None, [f"output={root}", *overrides, *more]).clean)[0]

    def noop(df):
        df.write.format("noop").mode("overwrite").save()

    c = inp().c
    steps = {
        "read the rows": lambda: noop(src),
        "+ measuring pass (features Arrow UDF)": lambda: noop(
            src.withColumn("_f", features_udf(c.scan_width, secrets.hint_table())(F.col("content")))),
        "+ exact dedup (shuffle by key, window)": lambda: noop(transform.measured(src, inp())),
        "+ decisions in SQL (no secrets, no decontamination)": lambda: noop(
            transform.clean(src, inp("clean.secrets=off", "clean.decontaminate=[]"))),
        "+ secret regexes (hinted survivors)": lambda: noop(transform.clean(src, inp("clean.decontaminate=[]"))),
        "+ decontamination pass, exact": lambda: noop(transform.clean(src, inp('clean.decontam_methods=["exact"]'))),
        "+ decontamination pass, exact + ngram (the transform)": lambda: noop(transform.clean(src, inp())),
        "whole stage (Parquet writes, funnel, counts)": lambda: run_one(
            spark, load_config(None, [f"output={root}", *overrides]), "clean", force=True),
    }
    out = {}
    for name, fn in steps.items():
        fn()  # warm-up: the first run of a plan pays for code generation and worker start
        out[name] = round(min(_wall(fn) for _ in range(2)), 2)
        print(f"  {name}: {out[name]} s", flush=True)
    return out


def _wall(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


@contextmanager
def rows_root(table: pa.Table, prefix: str) -> Iterator[str]:
    """A temporary run root holding `table` as ingest's output, removed afterwards."""
    from codecorpus.io.shards import ROW_GROUP_ROWS

    root = tempfile.mkdtemp(prefix=prefix)
    try:
        write_rows(table, root, ROW_GROUP_ROWS)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", default=str(ROOT / "out" / "ingest"), help="an ingest output folder (Parquet)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N files by id (0 = all)")
    ap.add_argument("--repeats", type=int, default=1, help="ours/theirs pairs, interleaved")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--num-proc", type=int, default=2, help="datasets map/filter processes")
    ap.add_argument("--parts-sample", type=int, default=3000, help="files for the part measurements")
    ap.add_argument("--passes", action="store_true", help="also measure the stage pass by pass (minutes)")
    ap.add_argument("--no-warm-up", dest="warm_up", action="store_false",
                    help="time the JVM's first run of the stage in the first pair (the old way)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)

    from codecorpus.io.shards import ROW_GROUP_ROWS, TYPED_COLUMNS

    load_start = os.getloadavg()
    table = load_table(args.input, args.limit or None, TYPED_COLUMNS)
    files = table.num_rows
    mb = sum(len(t.encode()) for t in table.column("content").to_pylist()) / 1e6
    print(f"{files:,} files, {mb:,.1f} MB of content", flush=True)
    spark = spark_session(args.master)
    pairs = []

    def ours_once(label: str) -> dict:
        with rows_root(table, "bench-clean-ours-") as root:
            ours = run_ours(spark, root, args.overrides)
        print(f"ours {label}: {ours['seconds']} s, cpu {ours['cpu_seconds']} s, kept {ours['kept']:,}", flush=True)
        return ours

    try:
        # The stage's first run in a fresh JVM also pays code generation, the JIT and the Python
        # workers' start, once per job (in the pipeline clean runs after ingest and stats in the
        # same JVM): it is timed on its own and kept out of the pairs, as the other benches keep
        # JVM start-up out.
        cold = ours_once("cold (first run in this JVM, not in the pairs)") if args.warm_up else None
        for i in range(args.repeats):
            work = tempfile.mkdtemp(prefix="bench-clean-hf-")
            try:
                ours = ours_once(f"#{i + 1}")
                theirs = run_theirs(table, work, args.overrides, args.num_proc)
                print(f"datasets #{i + 1}: {theirs['seconds']} s, cpu {theirs['cpu_seconds']} s, "
                      f"kept {theirs['kept']:,}", flush=True)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            pairs.append((ours, theirs))
        parts = measure_parts(spark, table, args.overrides, args.parts_sample) if args.parts_sample else {}
        passes = {}
        if args.passes:
            with rows_root(table, "bench-clean-passes-") as root:
                passes = measure_passes(spark, root, args.overrides)
    finally:
        spark.stop()

    ours, theirs = pairs[-1]
    ratios = [t["seconds"] / o["seconds"] for o, t in pairs]
    result = {
        "files": files, "data_mb": round(mb, 1), "master": args.master, "num_proc": args.num_proc,
        "ours_s": [o["seconds"] for o, _ in pairs], "peer_s": [t["seconds"] for _, t in pairs],
        "ours_mb_s": round(mb / statistics.median(o["seconds"] for o, _ in pairs), 2),
        "peer_mb_s": round(mb / statistics.median(t["seconds"] for _, t in pairs), 2),
        "peer": f"datasets map/filter num_proc={args.num_proc}",
        "ratio_median": round(statistics.median(ratios), 2),
        "cpu_ratio_peer_over_ours": round(theirs["cpu_seconds"] / max(ours["cpu_seconds"], 0.1), 2),
        "ours_cpu_s": ours["cpu_seconds"], "peer_cpu_s": theirs["cpu_seconds"],
        "kept_ours": ours["kept"], "kept_peer": theirs["kept"],
        "identical_kept": all(o["kept_ids"] == t["kept_ids"] for o, t in pairs)
        and (cold is None or cold["kept_ids"] == ours["kept_ids"]),
        "ours_cold_s": cold["seconds"] if cold else None,
        "ours_cold_cpu_s": cold["cpu_seconds"] if cold else None,
        "only_ours": len(set(ours["kept_ids"]) - set(theirs["kept_ids"])),
        "only_peer": len(set(theirs["kept_ids"]) - set(ours["kept_ids"])),
        "dropped_ours": ours["dropped"], "parts": parts, "passes_s": passes,
        "cpu_count": os.cpu_count(), "load_average_at_start": load_start, "load_average_at_end": os.getloadavg(),
    }
    return emit(result, args.json)


if __name__ == "__main__":
    main()
