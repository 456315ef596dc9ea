"""The `tokens` section of the report."""
from __future__ import annotations

import numpy as np

from codecorpus.tokens.packer import HIST_EDGES


def section(ctx) -> str | None:
    counts = ctx.counts.get("tokens")
    if counts is None:
        return None
    splits = counts.extra.get("splits", {})
    rows = [{"split": name, "files": f"{s['files']:,}", "files packed": f"{s['files_packed']:,}",
             "sequences": f"{s['sequences']:,}", "tokens": f"{s['tokens']:,}",
             "tokens dropped": f"{s['tokens_dropped']:,}", "padding": f"{s['padding_tokens']:,}",
             "chars/token": s["chars_per_token"] if s["chars_per_token"] is not None else "-"}
            for name, s in splits.items()]
    html = (f"<p>Sequences of {counts.extra['seq_length']:,} tokens ({counts.extra['dtype']} ids), encoded with "
            f"{counts.extra.get('encoder', 'tokenizers')}; tokenizer sha256 "
            f"{counts.extra['tokenizer_sha256'][:12]}…</p>" + ctx.table(rows))
    if any(sum(s["hist"]) for s in splits.values()):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        labels = [f"≥{e:,}" if i == len(HIST_EDGES) - 1 else f"{e:,}–{HIST_EDGES[i + 1] - 1:,}"
                  for i, e in enumerate(HIST_EDGES)]
        fig, ax = plt.subplots(figsize=(9, 3.5))
        width = 0.8 / max(1, len(splits))
        for k, (name, s) in enumerate(splits.items()):
            total = max(1, sum(s["hist"]))
            ax.bar(np.arange(len(labels)) + k * width, [c / total for c in s["hist"]], width, label=name)
        ax.set_xticks(np.arange(len(labels)) + width * (len(splits) - 1) / 2, labels, rotation=45, ha="right",
                      fontsize=8)
        ax.set_xlabel("file length in tokens")
        ax.set_ylabel("share of files")
        ax.legend()
        html += ctx.savefig(fig, "tokenize_file_lengths")
    return html
