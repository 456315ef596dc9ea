"""Where a training step's GPU time goes: torch.profiler's kernels sorted into matmuls, attention,
loss, optimizer and elementwise work (LayerNorm, GELU, bias, residual adds, casts, embeddings).

Kernels are told apart by name: cuBLAS/CUTLASS GEMMs (`nvjet`, `gemm`, `xmma`, `cutlass`),
attention kernels (`flash`, `fmha`, cuDNN's `sdpa`, `attention`), and Inductor's Triton kernels,
whose names list the ops they fuse (`triton_red_fused__log_softmax_...`). A fused kernel that
holds the loss *and* something else is counted as loss.
"""
from __future__ import annotations

import re

# Checked in this order: the first category whose pattern matches a kernel's name takes it.
CATEGORIES = [
    ("loss", re.compile(r"log_softmax|nll_loss|cross_entropy|liger", re.IGNORECASE)),
    ("attention", re.compile(r"flash|fmha|sdpa|attention|attn|mha", re.IGNORECASE)),
    ("matmul", re.compile(r"nvjet|gemm|xmma|cutlass|cublas|splitk|wgmma|sm90_", re.IGNORECASE)),
    ("optimizer", re.compile(r"adam|multi_tensor|foreach|_amp_", re.IGNORECASE)),
    ("layernorm", re.compile(r"layer_norm|layernorm", re.IGNORECASE)),
    ("gelu", re.compile(r"gelu|tanh", re.IGNORECASE)),
]
OTHER = "elementwise/other"


def category(name: str) -> str:
    for cat, pattern in CATEGORIES:
        if pattern.search(name):
            return cat
    return OTHER


def kernel_times(prof) -> dict[str, float]:
    """Self GPU time (µs) of each kernel name in a finished torch.profiler.profile."""
    out: dict[str, float] = {}
    for evt in prof.key_averages():
        if "CUDA" not in str(getattr(evt, "device_type", "")):
            continue
        us = getattr(evt, "self_device_time_total", None)
        if us is None:
            us = getattr(evt, "self_cuda_time_total", 0.0)
        if us:
            out[evt.key] = out.get(evt.key, 0.0) + float(us)
    return out


def table(kernels: dict[str, float], steps: int, matmul_flops_per_step: float | None = None,
          attention_calls_per_step: int | None = None, top: int = 12) -> dict:
    """Per-step milliseconds and shares by category; the matmuls' achieved TFLOP/s when their
    FLOPs per step are given; attention per call (layer x micro-batch) when that count is."""
    by_cat: dict[str, float] = {}
    for name, us in kernels.items():
        by_cat[category(name)] = by_cat.get(category(name), 0.0) + us
    total = sum(by_cat.values()) or 1.0
    rows = {cat: {"ms_per_step": round(us / 1000 / steps, 3), "share": round(us / total, 4)}
            for cat, us in sorted(by_cat.items(), key=lambda kv: -kv[1])}
    out = {"steps": steps, "gpu_ms_per_step": round(total / 1000 / steps, 3), "categories": rows,
           "top_kernels": [{"name": n[:120], "category": category(n), "ms_per_step": round(us / 1000 / steps, 3)}
                           for n, us in sorted(kernels.items(), key=lambda kv: -kv[1])[:top]]}
    mm = by_cat.get("matmul")
    if matmul_flops_per_step and mm:
        rows["matmul"]["tflops"] = round(matmul_flops_per_step / (mm / 1e6 / steps) / 1e12, 1)
    att = by_cat.get("attention")
    if attention_calls_per_step and att:
        rows["attention"]["ms_per_call"] = round(att / 1000 / steps / attention_calls_per_step, 3)
    return out


def markdown(t: dict) -> str:
    lines = [f"GPU time {t['gpu_ms_per_step']} ms per step (kernels only; {t['steps']} steps profiled)", "",
             "| category | ms / step | share | note |", "|---|---:|---:|---|"]
    for cat, r in t["categories"].items():
        note = []
        if "tflops" in r:
            note.append(f"{r['tflops']} TFLOP/s")
        if "ms_per_call" in r:
            note.append(f"{r['ms_per_call']} ms per layer per micro-batch")
        lines.append(f"| {cat} | {r['ms_per_step']} | {100 * r['share']:.1f}% | {', '.join(note)} |")
    lines += ["", "| top kernels | category | ms / step |", "|---|---|---:|"]
    lines += [f"| `{k['name']}` | {k['category']} | {k['ms_per_step']} |" for k in t["top_kernels"]]
    return "\n".join(lines) + "\n"
