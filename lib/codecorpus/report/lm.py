"""The language-model section of the HTML report, from the JSON files the GPU run writes.

The GPU run (bench/gpu_run.sh, docs/gpu-run.md) trains on a run's tokenizer/ and tokens/ and
writes its results under that run's `lm/` folder (`RunLayout(root).path("lm")`):
train_code.json and train_prose.json (jobs/train_lm.py's train_summary.json), generate.json,
humaneval.json and throughput.json; copied back next to the run's other outputs, the report
stage shows them. Reads JSON only, never Parquet or models.
"""
from __future__ import annotations

import html


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def section(ctx) -> str | None:
    gen = ctx.read_json("lm", "generate.json")
    trains = {k: ctx.read_json("lm", f"train_{k}.json") for k in ("code", "prose")}
    he = ctx.read_json("lm", "humaneval.json")
    tp = ctx.read_json("lm", "throughput.json")
    if not (gen or he or tp or any(trains.values())):
        return None
    parts = ["<p>GPT-2 <i>small</i>-shaped models trained from scratch on each corpus "
             "(bench/gpu_run.sh, docs/gpu-run.md).</p>"]
    rows = [{"corpus": k, "parameters": f"{t['n_params']:,}", "tokens": f"{t['tokens']:,}",
             "epochs": t["epochs"], "tokens/s": f"{t['tokens_per_s_steady']:,}" if t["tokens_per_s_steady"] else "-",
             "MFU (6N)": _pct(t["mfu"]), "final valid loss": t["final_valid_loss"],
             "best valid loss": t.get("best_valid_loss", "-"), "saved": t.get("saved_weights", "last")}
            for k, t in trains.items() if t]
    if rows:
        parts.append(ctx.table(rows))
    if gen:
        parts.append(ctx.table([{"model": m["model"], "parameters (numel)": f"{m['parameters']['numel']:,}",
                                 "book's sum(len(p))": f"{m['parameters']['book_sum_len_p']:,}",
                                 "tokens/s": m["tokens_per_s"], "peak GPU MiB": m.get("peak_memory_mib", "-"),
                                 "allocated after free": m["memory_allocated_after_free"]}
                                for m in gen["models"]]))
        for i, prompt in enumerate(gen["prompts"] + gen["code_prompts"]):
            key, j = ("generations", i) if i < len(gen["prompts"]) else ("code_generations", i - len(gen["prompts"]))
            parts.append(f"<h4>{html.escape(repr(prompt))}</h4>")
            for m in gen["models"]:
                item = m[key][j]
                texts = item.get("first_block", item["texts"])
                parts.append(f"<p><b>{html.escape(m['model'])}</b></p>" + "".join(
                    f"<pre>{html.escape(t)}</pre>" for t in texts))
    if he:
        parts.append(ctx.table([{"model": m["model"], "T": r["sampling"]["temperature"], "n": r["sampling"]["n"],
                                 "pass@1": _pct(r.get("pass@1")), "pass@10": _pct(r.get("pass@10")),
                                 "solved": ", ".join(r["solved"]) or "-"}
                                for m in he["models"] for r in m["runs"]]))
    if tp:
        parts.append(ctx.table([_throughput_row(m) for m in tp["models"]]))
    return "\n".join(parts)


def _throughput_row(m: dict) -> dict:
    """One model's decoding speeds; the fast path (static KV cache + CUDA graphs) where it ran,
    with the median and spread of its repeats against the pipeline() loop."""
    tps = m["tokens_per_s"]
    row = {"model": m["model"], "pipeline loop tokens/s": tps["pipeline_loop"], "batched tokens/s": tps["batched"],
           "batched speedup": f"{m['speedup_batched_over_pipeline']}x"}
    fast = m.get("speedup_over_pipeline", {}).get("fast")
    if fast:
        row.update({"fast tokens/s": tps["fast"],
                    "fast speedup (median, min-max)": f"{fast['median']}x ({fast['min']}-{fast['max']}x)"})
    return row
