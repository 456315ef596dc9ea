"""The `eval_tokenizer` section of the report."""
from __future__ import annotations

import html

from codecorpus.tokenizer import metrics

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


def section(ctx) -> str | None:
    data = ctx.read_json("tokenizer_eval.metrics")
    if not data:
        return None
    toks = data["tokenizers"]
    rows = [{"": label, **{t["name"]: value(t) for t in toks}} for label, value in ROWS]
    for snippet in data["snippets"]:
        rows.append({"": f"tokens in snippet '{snippet}'", **{t["name"]: t["snippet_lengths"][snippet] for t in toks}})
    training = ctx.read_json("tokenizer.training") or {}
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
