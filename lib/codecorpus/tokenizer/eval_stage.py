"""Stage `eval_tokenizer`: our tokenizer and the baselines on a seeded sample of dataset/valid.

Writes `tokenizer_eval/metrics.json` (see `metrics.py` for what each figure means) and gives the
report a side-by-side table and the token split of a sample snippet under each tokenizer.
"""
from __future__ import annotations

import html
import logging
import os
import time

from ..config import Config
from ..errors import UserError
from ..io import fs
from ..io.parquet import read_parquet
from ..stage import Counts, StageOutputs
from . import metrics
from .judge import Judge, judge_all
from .load import load_tokenizer
from .sample import peak_rss_mb, sample_stream
from .train import text_batches

log = logging.getLogger("codecorpus")

NAME = "eval_tokenizer"
OUTPUTS = ["tokenizer_eval"]
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


def build(spark, cfg: Config, out: StageOutputs) -> Counts:
    tc = cfg.tokenizer
    root = cfg.output.rstrip("/")
    ours = f"{root}/tokenizer"
    if not fs.exists(f"{ours}/tokenizer.json"):
        raise UserError(f"no trained tokenizer at {ours}: run train_tokenizer first")
    judges = [Judge(OURS, load_tokenizer(ours), ours)]
    judges += [Judge(name, load_tokenizer(path), path) for name, path in baseline_specs(tc.baselines)]
    df = read_parquet(spark, f"{root}/dataset/valid")
    stream = sample_stream(df, tc.eval_files, tc.seed, tc.max_chars_per_file, label=NAME)
    started = time.time()
    results = judge_all(judges, text_batches(stream))
    data = {
        "valid_files": stream.files, "valid_chars": stream.chars, "valid_bytes": stream.bytes, "seed": tc.seed,
        "max_chars_per_file": tc.max_chars_per_file, "word_definition": metrics.WORD_RE.pattern,
        "rare_below": metrics.RARE_BELOW, "keywords": metrics.KEYWORDS, "snippets": metrics.SNIPPETS,
        "sample_snippet": metrics.SAMPLE_SNIPPET, "tokenizers": results,
        "seconds": round(time.time() - started, 3), "driver_peak_rss_mb": peak_rss_mb(),
    }
    fs.makedirs(out.tmp("tokenizer_eval"))
    fs.write_json_atomic(f"{out.tmp('tokenizer_eval')}/metrics.json", data)
    for r in results:
        m = r["metrics"]
        log.info("[%s] %s: fertility %s, continued %s, chars/token %s, keywords not one token: %s", NAME,
                 r["name"], m["fertility"], m["continued_words"], m["chars_per_token"],
                 ", ".join(r["keywords_missing"]) or "none")
    extra = {"tokenizers": [r["name"] for r in results],
             "chars_per_token": {r["name"]: r["metrics"]["chars_per_token"] for r in results}}
    return Counts(NAME, rows_in=stream.files, rows_out=stream.files, extra=extra)


# ------------------------------------------------------------------------------------ report

ROWS = [
    ("vocabulary size", lambda r: f"{r['vocab_size']:,}"),
    ("model", lambda r: f"{r['model']}{' (byte-level)' if r['byte_level'] else ''}"),
    ("subword fertility (tokens / word)", lambda r: r["metrics"]["fertility"]),
    ("continued words (>= 2 tokens)", lambda r: _pct(r["metrics"]["continued_words"])),
    ("characters / token", lambda r: r["metrics"]["chars_per_token"]),
    ("bytes / token", lambda r: r["metrics"]["bytes_per_token"]),
    ("unknown tokens", lambda r: _pct(r["metrics"]["unknown_share"])),
    ("partial-character tokens", lambda r: _pct(r["metrics"]["partial_char_share"])),
    ("vocabulary never used on valid", lambda r: _pct(r["metrics"]["vocab_unused_share"])),
    (f"vocabulary used 1-{metrics.RARE_BELOW - 1} times", lambda r: _pct(r["metrics"]["vocab_rare_share"])),
    ("tokens on the valid sample", lambda r: f"{r['metrics']['tokens']:,}"),
    ("keywords not one token", lambda r: ", ".join(r["keywords_missing"]) or "none"),
    ("... after a space", lambda r: ", ".join(r["keywords_missing_after_space"]) or "none"),
    ("longest tokens", lambda r: " | ".join(_short(t) for t in r["longest_tokens"][:3])),
]


def _short(token: str, width: int = 24) -> str:
    return repr(token if len(token) <= width else token[:width] + "...")


def _pct(x) -> str:
    return "" if x is None else f"{100 * x:.2f}%"


def report_section(ctx) -> str | None:
    data = ctx.read_json("tokenizer_eval/metrics.json")
    if not data:
        return None
    toks = data["tokenizers"]
    rows = [{"": label, **{t["name"]: value(t) for t in toks}} for label, value in ROWS]
    for snippet in data["snippets"]:
        rows.append({"": f"tokens in snippet '{snippet}'", **{t["name"]: t["snippet_lengths"][snippet] for t in toks}})
    training = ctx.read_json("tokenizer/training.json") or {}
    sample = training.get("sample", {})
    intro = (f"<p>Trained on {sample.get('files', 0):,} files ({sample.get('bytes', 0) / 1e6:,.1f} MB) of "
             f"dataset/train in {training.get('train_seconds', 0):,.0f} s, driver peak memory "
             f"{training.get('driver_peak_rss_mb', 0):,.0f} MiB. Judged on {data['valid_files']:,} files "
             f"({data['valid_bytes'] / 1e6:,.1f} MB) of dataset/valid. A word is a match of "
             f"<code>{html.escape(data['word_definition'])}</code>; see docs/tokenizer.md.</p>")
    snippet = data["snippets"][data["sample_snippet"]]
    splits = "".join(
        f"<p><b>{html.escape(t['name'])}</b> ({len(t['sample_split'])} tokens): "
        + " ".join(f"<code>{html.escape(tok)}</code>" for tok in t["sample_split"]) + "</p>"
        for t in toks)
    return (intro + ctx.table(rows) + f"<h3>Sample snippet</h3><pre>{html.escape(snippet)}</pre>" + splits)
