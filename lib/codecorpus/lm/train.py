"""Train a GPT-2-style causal LM from scratch (no pretrained weights) on packed token chunks.

bf16 autocast on CUDA (fp32 master weights), AdamW with decoupled weight decay on matrices only,
linear warmup then cosine decay, gradient accumulation, a step and/or wall-clock budget,
periodic validation loss and perplexity, a resumable checkpoint, and a Hugging Face model
directory at the end. Logs tokens/s and model FLOPs utilisation (MFU).

MFU = 6 * N * tokens_per_second / peak, N = every parameter counted once (numel; the tied
input/output embedding once), peak = the chip's dense bf16 spec (H100/H200 SXM: 989 TFLOP/s).
`mfu_attn` adds the attention term 12 * n_layer * n_embd * seq_length FLOPs per token (PaLM
appendix B / nanoGPT), which 6N leaves out.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from codecorpus.core.errors import UserError
from codecorpus.lm.config import LMConfig
from codecorpus.lm.data import BatchSampler, DataSets

log = logging.getLogger("codecorpus")

# Dense bf16 tensor-core peaks from the vendors' datasheets (no sparsity), FLOP/s.
PEAK_BF16 = {"H200": 989.4e12, "H100": 989.4e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12}
CHECKPOINT = "checkpoint.pt"


@dataclass
class Runtime:
    device: Any
    amp_dtype: Any  # torch.bfloat16 or None (plain fp32)
    peak_flops: float | None
    device_name: str


def runtime_for(cfg: LMConfig, device: str | None = None, peak_tflops: float | None = None) -> Runtime:
    import torch

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if cfg.dtype == "bf16" or (cfg.dtype == "auto" and dev.type == "cuda"):
        amp = torch.bfloat16
    else:
        amp = None
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    peak = peak_tflops * 1e12 if peak_tflops else next((v for k, v in PEAK_BF16.items() if k in name), None)
    if amp is None and not peak_tflops:
        peak = None  # an fp32 run measured against a bf16 peak would mean nothing
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return Runtime(dev, amp, peak, name)


def build_model(cfg: LMConfig, vocab_size: int, eos_id: int):
    """A freshly initialised GPT2LMHeadModel (seeded, so two runs start from the same weights)."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config

    config = GPT2Config(vocab_size=vocab_size, n_positions=cfg.seq_length, n_embd=cfg.n_embd,
                        n_layer=cfg.n_layer, n_head=cfg.n_head, resid_pdrop=cfg.dropout,
                        embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout, bos_token_id=eos_id,
                        eos_token_id=eos_id, pad_token_id=eos_id)
    torch.manual_seed(cfg.seed)
    return AutoModelForCausalLM.from_config(config, attn_implementation=cfg.attn_implementation)


def count_parameters(model) -> int:
    """True parameter count: numel of every distinct tensor. (Summing len(p), as the book's cell
    does, adds up first dimensions: 768 for a 768 x 3072 matrix.)"""
    return sum(p.numel() for p in model.parameters())


def flops_per_token(cfg: LMConfig, n_params: int) -> tuple[float, float]:
    base = 6.0 * n_params
    return base, base + 12.0 * cfg.n_layer * cfg.n_embd * cfg.seq_length


def lr_at(cfg: LMConfig, step: int, progress: float) -> float:
    """Linear warmup over `warmup_steps`, then cosine from lr down to lr * min_lr_ratio over the
    budget's progress (0..1: the larger of steps done / max_steps and time used / time budget)."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    p = min(max(progress, 0.0), 1.0)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * p))


def make_optimizer(model, cfg: LMConfig, device):
    import torch

    # codeparrot's grouping: no weight decay on biases and LayerNorm weights (every 1-D tensor)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                             fused=device.type == "cuda")


def _to_device(rows: np.ndarray, device):
    import torch

    t = torch.from_numpy(rows.astype(np.int64))
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t


def evaluate(model, valid: np.ndarray, cfg: LMConfig, rt: Runtime) -> float:
    """Mean token loss on a fixed, evenly spread sample of validation rows."""
    import torch

    n = min(len(valid), cfg.eval_batches * cfg.micro_batch_size)
    idx = np.unique(np.linspace(0, len(valid) - 1, n).astype(np.int64))
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(idx), cfg.micro_batch_size):
            x = _to_device(valid[idx[start:start + cfg.micro_batch_size]], rt.device)
            with torch.autocast(rt.device.type, dtype=rt.amp_dtype, enabled=rt.amp_dtype is not None):
                loss = model(input_ids=x, labels=x).loss
            total += float(loss) * len(x)
            count += len(x)
    model.train(was_training)
    return total / max(count, 1)


def _save_checkpoint(path: str, model, optimizer, sampler: BatchSampler, state: dict, cfg: LMConfig) -> None:
    import torch

    tmp = f"{path}.tmp-{os.getpid()}"
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "sampler": sampler.state_dict(), "state": state, "config": cfg.to_dict(),
                "rng": {"torch": torch.get_rng_state(),
                        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}},
               tmp)
    os.replace(tmp, path)


_SHAPE_KEYS = ("n_layer", "n_head", "n_embd", "seq_length", "micro_batch_size", "grad_accum", "seed")


def _load_checkpoint(path: str, model, optimizer, sampler: BatchSampler, cfg: LMConfig) -> dict:
    import torch

    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    saved = ckpt["config"]
    diff = [k for k in _SHAPE_KEYS if saved.get(k) != getattr(cfg, k)]
    if diff:
        raise UserError(f"{path}: checkpoint made with different {', '.join(diff)}; "
                        f"start a fresh run or use the same settings")
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    sampler.load_state_dict(ckpt["sampler"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    if ckpt["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
    return ckpt["state"]


def train(cfg: LMConfig, data: DataSets, tokenizer, out_dir: str, *, resume: bool = False,
          device: str | None = None, peak_tflops: float | None = None, stop_after: int | None = None,
          save_model: bool = True) -> dict:
    """Run the training loop; returns the summary also written to `out_dir/train_summary.json`.

    `stop_after` ends the run after that many optimizer steps *without* counting it as the end of
    the schedule (a checkpoint is written): the resume test interrupts a run this way."""
    import torch

    os.makedirs(out_dir, exist_ok=True)
    rt = runtime_for(cfg, device, peak_tflops)
    vocab = cfg.vocab_size or len(tokenizer)
    top = int(max(data.train.max(), data.valid.max()))
    if top >= vocab:
        raise UserError(f"token id {top} in the data is outside the vocabulary of {vocab} "
                        f"(was it tokenized with another tokenizer?)")
    model = build_model(cfg, vocab, tokenizer.eos_token_id).to(rt.device)
    model.config.use_cache = False
    model.train()
    n_params = count_parameters(model)
    fpt, fpt_attn = flops_per_token(cfg, n_params)
    optimizer = make_optimizer(model, cfg, rt.device)
    sampler = BatchSampler(len(data.train), cfg.micro_batch_size, cfg.seed)
    ckpt_path = os.path.join(out_dir, CHECKPOINT)
    state = {"step": 0, "tokens": 0, "elapsed_s": 0.0, "evals": []}
    if resume and os.path.exists(ckpt_path):
        state = _load_checkpoint(ckpt_path, model, optimizer, sampler, cfg)
        log.info("resumed from %s at step %d", ckpt_path, state["step"])
    elif resume:
        log.info("no checkpoint at %s: starting fresh", ckpt_path)

    step_model = torch.compile(model) if cfg.compile else model
    log.info("model: %s parameters (numel), %d layers x %d, context %d, vocab %d; device %s, %s%s",
             f"{n_params:,}", cfg.n_layer, cfg.n_embd, cfg.seq_length, vocab, rt.device_name,
             "bf16 autocast" if rt.amp_dtype is not None else "fp32", ", torch.compile" if cfg.compile else "")
    log_path = os.path.join(out_dir, "train_log.jsonl")
    log_file = open(log_path, "a")

    def emit(rec: dict) -> None:
        log_file.write(json.dumps(rec) + "\n")
        log_file.flush()
        print(json.dumps(rec), flush=True)

    def sync() -> None:
        if rt.device.type == "cuda":
            torch.cuda.synchronize()

    def progress() -> float:
        p = state["step"] / cfg.max_steps
        if cfg.time_budget_s:
            p = max(p, state["elapsed_s"] / cfg.time_budget_s)
        return p

    best: dict = {"loss": math.inf, "step": None, "weights": None}

    def do_eval() -> float:
        v = evaluate(model, data.valid, cfg, rt)
        state["evals"].append({"step": state["step"], "tokens": state["tokens"], "valid_loss": v})
        if cfg.keep_best and v < best["loss"]:
            best.update(loss=v, step=state["step"],
                        weights={k: t.detach().to("cpu", copy=True) for k, t in model.state_dict().items()})
        emit({"event": "eval", "step": state["step"], "tokens": state["tokens"], "valid_loss": round(v, 4),
              "valid_ppl": round(math.exp(min(v, 50)), 2), "elapsed_s": round(state["elapsed_s"], 1)})
        return v

    if rt.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(rt.device)
    sync()
    t_start = time.perf_counter() - state["elapsed_s"]
    step_time = 0.0  # time inside optimizer steps (no eval / checkpoint), for throughput
    interval_t0, interval_tokens, interval_steps = time.perf_counter(), 0, 0
    steady = {"tokens": 0, "time": 0.0}  # every log interval after the first (compile, warm-up)
    first_interval = True
    loss_acc = torch.zeros((), device=rt.device)
    steps_this_run = 0
    stop_reason = "max_steps"
    while True:
        if state["step"] >= cfg.max_steps:
            break
        if cfg.time_budget_s and state["elapsed_s"] >= cfg.time_budget_s:
            stop_reason = "time_budget"
            break
        if stop_after is not None and steps_this_run >= stop_after:
            stop_reason = "stop_after"
            break
        lr = lr_at(cfg, state["step"], progress())
        for g in optimizer.param_groups:
            g["lr"] = lr
        t0 = time.perf_counter()
        for _ in range(cfg.grad_accum):
            x = _to_device(data.train[sampler.next()], rt.device)
            with torch.autocast(rt.device.type, dtype=rt.amp_dtype, enabled=rt.amp_dtype is not None):
                loss = step_model(input_ids=x, labels=x).loss / cfg.grad_accum
            loss.backward()
            loss_acc += loss.detach()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip) if cfg.grad_clip else None
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        state["step"] += 1
        steps_this_run += 1
        state["tokens"] += cfg.tokens_per_step
        interval_tokens += cfg.tokens_per_step
        interval_steps += 1
        log_now = state["step"] % cfg.log_every == 0 or state["step"] == cfg.max_steps
        if log_now:
            sync()
        step_time += time.perf_counter() - t0
        state["elapsed_s"] = time.perf_counter() - t_start
        if log_now:
            dt = time.perf_counter() - interval_t0
            tps = interval_tokens / dt if dt > 0 else 0.0
            if not first_interval:
                steady["tokens"] += interval_tokens
                steady["time"] += dt
            first_interval = False
            rec = {"event": "train", "step": state["step"], "tokens": state["tokens"],
                   "loss": round(float(loss_acc) / interval_steps, 4), "lr": lr,
                   "grad_norm": round(float(grad_norm), 3) if grad_norm is not None else None,
                   "tokens_per_s": round(tps), "elapsed_s": round(state["elapsed_s"], 1),
                   "epochs": round(sampler.epochs, 3)}
            if rt.peak_flops:
                rec["mfu"] = round(fpt * tps / rt.peak_flops, 4)
            emit(rec)
            loss_acc.zero_()
            interval_tokens, interval_steps = 0, 0
        if cfg.eval_every and state["step"] % cfg.eval_every == 0:
            do_eval()
        if cfg.checkpoint_every and state["step"] % cfg.checkpoint_every == 0:
            _save_checkpoint(ckpt_path, model, optimizer, sampler, state, cfg)
        if log_now:  # the interval clock restarts after eval/checkpoint, so they are not counted
            interval_t0 = time.perf_counter()

    final_loss = state["evals"][-1]["valid_loss"] if state["evals"] and state["evals"][-1]["step"] == state["step"] \
        else do_eval()
    state["elapsed_s"] = time.perf_counter() - t_start
    _save_checkpoint(ckpt_path, model, optimizer, sampler, state, cfg)
    model.config.use_cache = True
    saved = "last"
    if cfg.keep_best and best["weights"] is not None and best["loss"] < final_loss:
        model.load_state_dict(best["weights"])
        saved = f"best (step {best['step']})"
    if save_model and stop_reason != "stop_after":
        model.generation_config.pad_token_id = tokenizer.eos_token_id
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    steady_tps = steady["tokens"] / steady["time"] if steady["time"] > 0 else None
    summary = {
        "n_params": n_params, "config": cfg.to_dict(), "device": rt.device_name,
        "precision": "bf16 autocast" if rt.amp_dtype is not None else "fp32",
        "steps": state["step"], "tokens": state["tokens"], "epochs": round(sampler.epochs, 3),
        "stop_reason": stop_reason, "elapsed_s": round(state["elapsed_s"], 1),
        "steps_this_run": steps_this_run, "step_time_s": round(step_time, 1),
        "tokens_per_s_steady": round(steady_tps) if steady_tps else None,
        "tokens_per_s_overall": round(steps_this_run * cfg.tokens_per_step / step_time) if step_time else None,
        "peak_flops": rt.peak_flops, "flops_per_token_6n": fpt, "flops_per_token_with_attn": fpt_attn,
        "mfu": round(fpt * steady_tps / rt.peak_flops, 4) if steady_tps and rt.peak_flops else None,
        "mfu_attn": round(fpt_attn * steady_tps / rt.peak_flops, 4) if steady_tps and rt.peak_flops else None,
        "final_valid_loss": round(final_loss, 4), "final_valid_ppl": round(math.exp(min(final_loss, 50)), 3),
        "best_valid_loss": round(min(best["loss"], final_loss), 4), "saved_weights": saved,
        "evals": state["evals"], "data": data.info,
        "peak_memory_gib": round(torch.cuda.max_memory_allocated(rt.device) / 2**30, 2)
        if rt.device.type == "cuda" else None,
    }
    with open(os.path.join(out_dir, "train_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    emit({"event": "done", **{k: v for k, v in summary.items() if k not in ("config", "evals", "data")}})
    log_file.close()
    return summary
