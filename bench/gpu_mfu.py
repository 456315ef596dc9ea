"""Training speed of GPT-2 small on the GPU: model variants and levers, each a fixed number of
optimizer steps, repeated, with the steady-state MFU and its spread; a kernel-time profile of
one variant; SDPA backends alone on the model's attention shape; the machine's matmul ceiling.

    python bench/gpu_mfu.py --run .gpu/runs/code --variants compact,hf --repeats 2 --steps 40 \
        --profile compact --attention --out-json mfu.json --out-md mfu.md

Every variant runs `lm.train.train` itself (the loop the real runs use) on the run's tokens with
lm.max_steps = --steps, log_every 10: "steady" is every log interval after the first (which holds
compilation). MFU = 6 N tokens/s / 989.4 TFLOP/s, N = numel (tied embedding once); also with
attention's 12 L d T FLOPs per token. Dynamo's caches are reset before each run, so each variant
compiles its own graphs (Inductor's on-disk cache makes a repeat's compilation quicker).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "lib"))

# name -> lm overrides on top of conf/default.toml's [lm] (GPT-2 small, compact, compiled, 64 x 1,
# strided q/k/v, bf16 residual stream). "compact" is the model before those two levers.
BASE = ["lm.contiguous_qkv=true", "lm.bf16_residual=false"]
VARIANTS = {
    "default": [],
    "hf": ["lm.model=hf"],
    "compact": BASE,
    "compact_strided": BASE + ["lm.contiguous_qkv=false"],
    "compact_cudnn": BASE + ["lm.sdpa_backend=cudnn"],
    "compact_flash": BASE + ["lm.sdpa_backend=flash"],
    "flash_mb32x2": BASE + ["lm.sdpa_backend=flash", "lm.micro_batch_size=32", "lm.grad_accum=2"],
    "compact_efficient": BASE + ["lm.sdpa_backend=efficient"],
    "liger": BASE + ["lm.loss=liger"],
    "liger_mb32x2": BASE + ["lm.loss=liger", "lm.micro_batch_size=32", "lm.grad_accum=2"],
    "mb16x4": BASE + ["lm.micro_batch_size=16", "lm.grad_accum=4"],
    "mb32x2": BASE + ["lm.micro_batch_size=32", "lm.grad_accum=2"],
    "hf_mb32x2": ["lm.model=hf", "lm.micro_batch_size=32", "lm.grad_accum=2"],
    "eager": ["lm.compile=false"],
    "bf16res": ["lm.bf16_residual=true", "lm.contiguous_qkv=true"],
    "bf16res_strided": ["lm.bf16_residual=true", "lm.contiguous_qkv=false"],
    "autotune": ["lm.compile_mode=max-autotune-no-cudagraphs"],
    "autotune_cg": ["lm.compile_mode=max-autotune"],
    "cudagraphs": ["lm.compile_mode=reduce-overhead"],
    "mb96": ["lm.micro_batch_size=96"],
}


def run_variant(name: str, overrides: list[str], data, tokenizer, steps: int, profile: bool) -> dict:
    import torch
    from codecorpus.core.config import load_config
    from codecorpus.lm.train import train

    torch._dynamo.reset()
    sets = [f"lm.max_steps={steps}", "lm.log_every=10", "lm.eval_every=0", "lm.eval_batches=1",
            "lm.keep_best=false", "lm.warmup_steps=10"] + overrides
    if profile:
        sets += [f"lm.profile_at={steps - 10}", "lm.profile_steps=5"]
    cfg = load_config(None, sets).lm
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        s = train(cfg, data, tokenizer, out, save_model=False, checkpoint=False)
        wall = time.perf_counter() - t0
    torch.cuda.empty_cache()
    return {"variant": name, "overrides": overrides, "steps": s["steps"], "tokens": s["tokens"],
            "tokens_per_s": s["tokens_per_s_steady"], "mfu": s["mfu"], "mfu_attn": s["mfu_attn"],
            "wall_s": round(wall, 1), "peak_memory_gib": s["peak_memory_gib"], "n_params": s["n_params"],
            "final_loss": s["final_valid_loss"], "profile": s.get("profile")}


def attention_backends(batch: int = 32, heads: int = 12, seq: int = 1024, dim: int = 64, iters: int = 20) -> list[dict]:
    """SDPA forward + backward alone, causal, bf16, per backend and q/k/v layout."""
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
                "efficient": SDPBackend.EFFICIENT_ATTENTION}
    # causal: half of the 4 B H T^2 D forward FLOPs; backward 2.5x forward (its five matmuls)
    flops = 3.5 * 4 * batch * heads * seq * seq * dim / 2
    qkv = torch.randn(batch, seq, 3, heads, dim, device="cuda", dtype=torch.bfloat16)
    layouts = {"contiguous": lambda: [t.contiguous() for t in qkv.permute(2, 0, 3, 1, 4).unbind(0)],
               "strided": lambda: [t.transpose(1, 2) for t in qkv.unbind(2)]}
    rows = []
    for bname, backend in backends.items():
        for lname, make in layouts.items():
            q, k, v = [t.detach().requires_grad_() for t in make()]
            g = torch.randn(batch, heads, seq, dim, device="cuda", dtype=torch.bfloat16)
            try:
                with sdpa_kernel([backend]):
                    def once(q=q, k=k, v=v, g=g):
                        F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(g)
                    ms = _time_ms(once, iters)
                rows.append({"backend": bname, "layout": lname, "ms_fwd_bwd": round(ms, 3),
                             "tflops_causal": round(flops / ms / 1e9, 1)})
            except RuntimeError as exc:
                rows.append({"backend": bname, "layout": lname, "error": str(exc).splitlines()[0][:160]})
    return rows


def matmul_ceiling(n: int = 8192, iters: int = 10) -> float:
    import torch

    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    ms = _time_ms(lambda: a @ b, iters)
    return round(2 * n ** 3 / ms / 1e9, 1)


def _time_ms(fn, iters: int) -> float:
    """Median milliseconds of `fn` over `iters` timed calls after 3 warm-ups (CUDA events)."""
    import torch

    for _ in range(3):
        fn()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def summarise(runs: list[dict]) -> list[dict]:
    by: dict[str, list[dict]] = {}
    for r in runs:
        if r.get("tokens_per_s"):
            by.setdefault(r["variant"], []).append(r)
    out = []
    for name, rs in by.items():
        mfu = [r["mfu"] for r in rs]
        out.append({"variant": name, "overrides": rs[0]["overrides"], "repeats": len(rs),
                    "tokens_per_s": [r["tokens_per_s"] for r in rs], "mfu": mfu,
                    "mfu_mean": round(statistics.mean(mfu), 4), "mfu_spread": round(max(mfu) - min(mfu), 4),
                    "mfu_attn_mean": round(statistics.mean(r["mfu_attn"] for r in rs), 4),
                    "peak_memory_gib": rs[0]["peak_memory_gib"], "wall_s": [r["wall_s"] for r in rs]})
    return out


def markdown(report: dict) -> str:
    from codecorpus.lm import profile as P

    lines = [f"# Training speed, GPT-2 small ({report['steps']} steps per run, steady = after the first "
             f"10-step interval; {report['device']})", "",
             f"8192^3 bf16 matmul here: {report.get('matmul_tflops')} TFLOP/s.", "",
             "| variant | settings | runs | tokens/s (each run) | MFU 6N (each) | mean | spread | MFU + attn | peak GiB |",
             "|---|---|---:|---|---|---:|---:|---:|---:|"]
    for s in report["summary"]:
        lines.append(f"| {s['variant']} | {' '.join(s['overrides']) or 'defaults'} | {s['repeats']} | "
                     f"{', '.join(f'{t:,}' for t in s['tokens_per_s'])} | {', '.join(f'{100 * m:.1f}%' for m in s['mfu'])} | "
                     f"**{100 * s['mfu_mean']:.1f}%** | {100 * s['mfu_spread']:.1f} pt | {100 * s['mfu_attn_mean']:.1f}% | "
                     f"{s['peak_memory_gib']} |")
    for r in report["runs"]:
        if r.get("error"):
            lines.append(f"| {r['variant']} | failed: {r['error'][:120]} | | | | | | | |")
    if report.get("attention"):
        lines += ["", "SDPA alone (B=32, H=12, T=1024, D=64, causal, bf16, forward + backward):", "",
                  "| backend | q/k/v layout | ms | TFLOP/s (causal FLOPs) |", "|---|---|---:|---:|"]
        for a in report["attention"]:
            lines.append(f"| {a['backend']} | {a['layout']} | {a.get('ms_fwd_bwd', '-')} | "
                         f"{a.get('tflops_causal', a.get('error', ''))} |")
    for r in report["runs"]:
        if r.get("profile"):
            lines += ["", f"## Profile: {r['variant']}", "", P.markdown(r["profile"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a pipeline run (tokenizer/ and tokens/)")
    ap.add_argument("--variants", default="compact,hf",
                    help=f"comma-separated, NAME or NAME:REPEATS, of {', '.join(VARIANTS)}")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=2, help="runs of each variant without :N")
    ap.add_argument("--profile", help="one more run of this variant, profiled (kernel table)")
    ap.add_argument("--attention", action="store_true", help="time SDPA backends alone")
    ap.add_argument("--budget-s", type=float, default=1e9, help="start no run after this many seconds")
    ap.add_argument("--max-train-tokens", type=int, default=20_000_000)
    ap.add_argument("--out-json")
    ap.add_argument("--out-md")
    args = ap.parse_args(argv)

    import torch
    from codecorpus.core.config import load_config
    from codecorpus.lm.data import load_run

    t0 = time.perf_counter()
    cfg = load_config(None, [f"lm.max_train_tokens={args.max_train_tokens}", "lm.max_valid_tokens=100000"]).lm
    tokenizer, data = load_run(args.run, cfg)
    report = {"device": torch.cuda.get_device_name(), "steps": args.steps, "torch": torch.__version__,
              "matmul_tflops": matmul_ceiling(), "runs": []}
    if args.attention:
        report["attention"] = attention_backends()
        print(json.dumps(report["attention"]), flush=True)
    plan = []  # each variant's repeats back to back, variants in the order given ("name:N": N repeats)
    for item in args.variants.split(","):
        name, _, n = item.partition(":")
        plan += [(name, False)] * (int(n) if n else args.repeats)
    if args.profile:
        plan.append((args.profile, True))
    for name, profile in plan:
        if time.perf_counter() - t0 > args.budget_s:
            report["runs"].append({"variant": name, "error": "skipped: over --budget-s"})
            continue
        try:
            r = run_variant(name, VARIANTS[name], data, tokenizer, args.steps, profile)
        except Exception as exc:  # one lever failing (a missing wheel, an unsupported kernel) is a result
            r = {"variant": name, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"}
        if profile and "tokens_per_s" in r:
            r["variant"] += " (profiled)"
            r["tokens_per_s"] = None  # its steady figure leaves out the profiled interval: not comparable
        report["runs"].append(r)
        print(json.dumps({k: v for k, v in r.items() if k != "profile"}), flush=True)
    report["summary"] = summarise(report["runs"])
    report["elapsed_s"] = round(time.perf_counter() - t0, 1)
    md = markdown(report)
    if args.out_json:
        with open(args.out_json, "w") as f:
            json.dump(report, f, indent=2)
    if args.out_md:
        with open(args.out_md, "w") as f:
            f.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
