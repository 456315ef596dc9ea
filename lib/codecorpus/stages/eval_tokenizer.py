"""Stage `eval_tokenizer`: our tokenizer and the baselines on a seeded sample of dataset/valid.

Writes `tokenizer_eval/metrics.json` (see `metrics.py` for what each figure means) and gives the
report a side-by-side table and the token split of a sample snippet under each tokenizer.
"""
from __future__ import annotations

import logging
import os
import time

from codecorpus.core.config import Config
from codecorpus.core.errors import UserError
from codecorpus.core.stage import Counts, StageIO
from codecorpus.io import fs
from codecorpus.tokenizer import metrics
from codecorpus.tokenizer.judge import Judge, judge_all
from codecorpus.tokenizer.load import load_tokenizer
from codecorpus.tokenizer.sample import peak_rss_mb, sample_or_skip
from codecorpus.tokenizer.train import text_batches

log = logging.getLogger("codecorpus")

NAME = "eval_tokenizer"
OURS = "ours"


def baseline_specs(items: list[str]) -> list[tuple[str, str]]:
    """`name=dir` or `dir` -> (name, dir); a bare `.../<run>/tokenizer` is named after <run>."""
    specs, seen = [], {OURS}
    for item in items:
        head, sep, tail = item.partition("=")
        name, path = (head.strip(), tail.strip()) if sep and "/" not in head else ("", item.strip())
        if not name:
            tail = os.path.basename(fs.local_path(path).rstrip("/"))
            name = os.path.basename(os.path.dirname(fs.local_path(path).rstrip("/"))) if tail == "tokenizer" else tail
        base, k = name.strip() or "baseline", 2
        name = base
        while name in seen:
            name, k = f"{base}-{k}", k + 1
        seen.add(name)
        specs.append((name, path))
    return specs


def build(spark, cfg: Config, io: StageIO) -> Counts:
    tc = cfg.tokenizer
    ours = io.input("tokenizer")
    if not fs.exists(io.input("tokenizer.json")):
        raise UserError(f"no trained tokenizer at {ours}: run train_tokenizer first")
    judges = [Judge(OURS, load_tokenizer(ours), ours)]
    judges += [Judge(name, load_tokenizer(path), path) for name, path in baseline_specs(tc.baselines)]
    stream = sample_or_skip(spark, io.input("dataset.valid"), tc.eval_files, tc.seed, tc.max_chars_per_file,
                            io.scratch("sample"), label=NAME)
    started = time.time()
    results = judge_all(judges, text_batches(stream))
    data = {
        "valid_files": stream.files, "valid_chars": stream.chars, "valid_bytes": stream.bytes, "seed": tc.seed,
        "max_chars_per_file": tc.max_chars_per_file, "word_definition": metrics.WORD_RE.pattern,
        "rare_below": metrics.RARE_BELOW, "keywords": metrics.KEYWORDS, "snippets": metrics.SNIPPETS,
        "sample_snippet": metrics.SAMPLE_SNIPPET, "tokenizers": results,
        "seconds": round(time.time() - started, 3), "driver_peak_rss_mb": peak_rss_mb(),
    }
    fs.write_json_atomic(io.output("tokenizer_eval.metrics"), data)
    for r in results:
        m = r["metrics"]
        log.info("[%s] %s: fertility %s, continued %s, chars/token %s, keywords not one token: %s", NAME,
                 r["name"], m["fertility"], m["continued_words"], m["chars_per_token"],
                 ", ".join(r["keywords_missing"]) or "none")
    extra = {"tokenizers": [r["name"] for r in results],
             "chars_per_token": {r["name"]: r["metrics"]["chars_per_token"] for r in results}}
    return Counts(NAME, rows_in=stream.files, rows_out=stream.files, extra=extra)
