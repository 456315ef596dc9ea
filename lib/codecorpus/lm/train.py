"""Train a GPT-2-style causal LM from scratch (no pretrained weights) on a pipeline run's packed
sequences (`lm.data.load_run`).

bf16 autocast on CUDA (fp32 master weights), AdamW with decoupled weight decay on matrices only,
linear warmup then cosine decay, gradient accumulation, a step and/or wall-clock budget,
periodic validation loss and perplexity, a resumable checkpoint, and a Hugging Face model
directory at the end. Logs tokens/s and model FLOPs utilisation (MFU).

MFU = 6 * N * tokens_per_second / peak, N = every parameter counted once (numel; the tied
input/output embedding once), peak = the chip's dense bf16 spec (H100/H200 SXM: 989 TFLOP/s).
`mfu_attn` adds the attention term 12 * n_layer * n_embd * seq_length FLOPs per token (PaLM
appendix B / nanoGPT), which 6N leaves out.

The model trained is `lm.model`: our compact GPT-2 (`lm.model.GPT`, default) or transformers'
GPT2LMHeadModel; both start from the same seeded GPT2LMHeadModel initialisation, and both are
saved as a GPT2LMHeadModel directory.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codecorpus.core.config import LmConfig
from codecorpus.core.errors import UserError
from codecorpus.lm.batches import BatchSampler
from codecorpus.lm.data import DataSets

log = logging.getLogger("codecorpus")

# Dense bf16 tensor-core peaks from the vendors' datasheets (no sparsity), FLOP/s.
PEAK_BF16 = {"H200": 989.4e12, "H100": 989.4e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12}
CHECKPOINT = "checkpoint.pt"
LOG = "train_log.jsonl"
SUMMARY = "train_summary.json"


@dataclass
class Runtime:
    device: Any
    amp_dtype: Any  # torch.bfloat16 or None (plain fp32)
    peak_flops: float | None
    device_name: str


def runtime_for(cfg: LmConfig, device: str | None = None, peak_tflops: float | None = None) -> Runtime:
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
        from codecorpus.lm.model import set_sdpa_backend

        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        set_sdpa_backend(cfg.sdpa_backend)
    return Runtime(dev, amp, peak, name)


def hf_config(cfg: LmConfig, vocab_size: int, eos_id: int):
    from transformers import GPT2Config

    return GPT2Config(vocab_size=vocab_size, n_positions=cfg.seq_length, n_embd=cfg.n_embd,
                      n_layer=cfg.n_layer, n_head=cfg.n_head, resid_pdrop=cfg.dropout,
                      embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout, bos_token_id=eos_id,
                      eos_token_id=eos_id, pad_token_id=eos_id)


def build_model(cfg: LmConfig, vocab_size: int, eos_id: int):
    """A freshly initialised GPT2LMHeadModel (seeded, so two runs start from the same weights)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(cfg.seed)
    return AutoModelForCausalLM.from_config(hf_config(cfg, vocab_size, eos_id),
                                            attn_implementation=cfg.attn_implementation)


def build_training_model(cfg: LmConfig, vocab_size: int, eos_id: int):
    """The model `lm.model` names, from GPT2LMHeadModel's seeded initialisation. The compact
    GPT has no dropout: it is for lm.dropout = 0 (the default), and says so otherwise."""
    hf = build_model(cfg, vocab_size, eos_id)
    if cfg.model == "hf":
        return hf
    if cfg.dropout:
        raise UserError("lm.model = 'compact' has no dropout: set lm.dropout = 0 or lm.model = 'hf'")
    from codecorpus.lm.model import from_hf

    return from_hf(hf, cfg.contiguous_qkv, cfg.loss, cfg.bf16_residual)


def loss_of(model, x):
    """Mean next-token loss of rows x under either model class."""
    if hasattr(model, "head_loss"):  # lm.model.GPT (or a compiled wrapper of it)
        return model(x, x)
    return model(input_ids=x, labels=x).loss


def compiled_loss(model, cfg: LmConfig):
    """The training step's loss function. With lm.compile the whole forward and loss are one
    graph; liger's fused linear + cross-entropy is a Triton op of its own, so then only the
    body up to the final LayerNorm is compiled and the loss runs after it."""
    import torch

    if not cfg.compile:
        return lambda x: loss_of(model, x)
    mode = None if cfg.compile_mode == "default" else cfg.compile_mode
    if cfg.model == "compact" and cfg.loss == "liger":
        body = torch.compile(lambda x: model.hidden(x)[:, :-1], mode=mode)
        return lambda x: model.head_loss(body(x), x[:, 1:])
    step_model = torch.compile(model, mode=mode)
    return lambda x: loss_of(step_model, x)


def count_parameters(model) -> int:
    """True parameter count: numel of every distinct tensor. (Summing len(p), as the book's cell
    does, adds up first dimensions: 768 for a 768 x 3072 matrix.)"""
    return sum(p.numel() for p in model.parameters())


def flops_per_token(cfg: LmConfig, n_params: int) -> tuple[float, float]:
    base = 6.0 * n_params
    return base, base + 12.0 * cfg.n_layer * cfg.n_embd * cfg.seq_length


def lr_at(cfg: LmConfig, step: int, progress: float) -> float:
    """Linear warmup over `warmup_steps`, then cosine from lr down to lr * min_lr_ratio over the
    budget's progress (0..1: the larger of steps done / max_steps and time used / time budget)."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    p = min(max(progress, 0.0), 1.0)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * p))


def make_optimizer(model, cfg: LmConfig, device):
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


def evaluate(model, valid: np.ndarray, cfg: LmConfig, rt: Runtime) -> float:
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
                loss = loss_of(model, x)
            total += float(loss) * len(x)
            count += len(x)
    model.train(was_training)
    return total / max(count, 1)


def _save_checkpoint(path: str, model, optimizer, sampler: BatchSampler, state: dict, cfg: LmConfig) -> None:
    import torch

    tmp = f"{path}.tmp-{os.getpid()}"
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "sampler": sampler.state_dict(), "state": state, "config": dataclasses.asdict(cfg),
                "rng": {"torch": torch.get_rng_state(),
                        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}},
               tmp)
    os.replace(tmp, path)


_SHAPE_KEYS = ("model", "n_layer", "n_head", "n_embd", "seq_length", "micro_batch_size", "grad_accum", "seed")


def _load_checkpoint(path: str, model, optimizer, sampler: BatchSampler, cfg: LmConfig) -> dict:
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


class TrainLog:
    """train_log.jsonl (appended to: a resumed run continues its log); every record is echoed
    on stdout, where a device call's output shows it."""

    def __init__(self, path: str):
        self._file = open(path, "a")

    def emit(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        print(json.dumps(record), flush=True)

    def close(self) -> None:
        self._file.close()


@dataclass
class Best:
    """The weights of the lowest validation loss so far, copied to the CPU (lm.keep_best)."""
    loss: float = math.inf
    step: int | None = None
    weights: dict | None = None

    def offer(self, loss: float, step: int, model) -> None:
        if loss < self.loss:
            self.loss, self.step = loss, step
            self.weights = {k: t.detach().to("cpu", copy=True) for k, t in model.state_dict().items()}


class Throughput:
    """tokens/s per log interval. The interval clock restarts after the eval and checkpoint that
    follow a log, so they are not counted; the steady figure leaves out a run's first interval
    (compilation, warm-up)."""

    def __init__(self, tokens_per_step: int):
        self.tokens_per_step = tokens_per_step
        self.t0 = time.perf_counter()
        self.tokens = self.steps = 0
        self.first = True
        self.discard = False  # this interval was profiled: not a steady-state figure
        self.steady_tokens, self.steady_time = 0, 0.0
        self.step_time = 0.0  # inside optimizer steps only (no eval / checkpoint)

    def add_step(self, seconds: float) -> None:
        self.tokens += self.tokens_per_step
        self.steps += 1
        self.step_time += seconds

    def close_interval(self) -> tuple[float, int]:
        """(tokens/s, steps) of the interval that ends now."""
        dt = time.perf_counter() - self.t0
        tps = self.tokens / dt if dt > 0 else 0.0
        if not self.first and not self.discard:
            self.steady_tokens += self.tokens
            self.steady_time += dt
        self.first = self.discard = False
        steps, self.tokens, self.steps = self.steps, 0, 0
        return tps, steps

    def restart(self) -> None:
        self.t0 = time.perf_counter()

    @property
    def steady(self) -> float | None:
        return self.steady_tokens / self.steady_time if self.steady_time > 0 else None


@dataclass
class Training:
    """One run's moving parts; `state` is what the checkpoint carries besides the tensors."""
    cfg: LmConfig
    data: DataSets
    rt: Runtime
    model: Any
    step_loss: Any  # rows -> loss: compiled with lm.compile (`compiled_loss`)
    optimizer: Any
    sampler: BatchSampler
    ckpt_path: str
    log: TrainLog
    n_params: int
    state: dict = field(default_factory=lambda: {"step": 0, "tokens": 0, "elapsed_s": 0.0, "evals": []})
    best: Best = field(default_factory=Best)
    clock: Throughput | None = None
    hf_config: Any = None  # the GPT2Config a compact model is saved under
    profiler: Any = None
    profile: dict | None = None
    steps_this_run: int = 0
    t_start: float = 0.0

    def progress(self) -> float:
        """Of the budget: the larger of steps done / max_steps and time used / time budget."""
        p = self.state["step"] / self.cfg.max_steps
        if self.cfg.time_budget_s:
            p = max(p, self.state["elapsed_s"] / self.cfg.time_budget_s)
        return p

    def sync(self) -> None:
        import torch

        if self.rt.device.type == "cuda":
            torch.cuda.synchronize()

    def autocast(self):
        import torch

        return torch.autocast(self.rt.device.type, dtype=self.rt.amp_dtype, enabled=self.rt.amp_dtype is not None)


def train(cfg: LmConfig, data: DataSets, tokenizer, out_dir: str, *, resume: bool = False,
          device: str | None = None, peak_tflops: float | None = None, stop_after: int | None = None,
          save_model: bool = True, checkpoint: bool = True) -> dict:
    """Run the training loop; returns the summary also written to `out_dir/train_summary.json`.

    `stop_after` ends the run after that many optimizer steps *without* counting it as the end of
    the schedule (a checkpoint is written, no model): the resume test interrupts a run this way.
    `checkpoint=False` writes no final checkpoint (speed measurements: 1.3 GB for `small`)."""
    os.makedirs(out_dir, exist_ok=True)
    rt = runtime_for(cfg, device, peak_tflops)
    vocab = _vocab_size(cfg, data, tokenizer)
    t = _start(cfg, data, rt, vocab, tokenizer.eos_token_id, out_dir, resume)
    try:
        stop_reason = _loop(t, stop_after)
        summary = _finish(t, tokenizer, out_dir, stop_reason, save_model, checkpoint)
    finally:
        t.log.close()
    return summary


def _vocab_size(cfg: LmConfig, data: DataSets, tokenizer) -> int:
    vocab = cfg.vocab_size or len(tokenizer)
    top = int(max(data.train.max(), data.valid.max()))
    if top >= vocab:
        raise UserError(f"token id {top} in the data is outside the vocabulary of {vocab} "
                        f"(was it tokenized with another tokenizer?)")
    return vocab


def _start(cfg: LmConfig, data: DataSets, rt: Runtime, vocab: int, eos_id: int, out_dir: str,
           resume: bool) -> Training:
    """A fresh model, optimizer and sampler, or the checkpoint's when resuming."""
    model = build_training_model(cfg, vocab, eos_id).to(rt.device)
    if cfg.model == "hf":
        model.config.use_cache = False  # no KV cache in training: it only costs memory
    model.train()
    t = Training(cfg, data, rt, model, None, make_optimizer(model, cfg, rt.device),
                 BatchSampler(len(data.train), cfg.micro_batch_size, cfg.seed),
                 os.path.join(out_dir, CHECKPOINT), TrainLog(os.path.join(out_dir, LOG)), count_parameters(model),
                 hf_config=hf_config(cfg, vocab, eos_id))
    if resume and os.path.exists(t.ckpt_path):
        t.state = _load_checkpoint(t.ckpt_path, model, t.optimizer, t.sampler, cfg)
        log.info("resumed from %s at step %d", t.ckpt_path, t.state["step"])
    elif resume:
        log.info("no checkpoint at %s: starting fresh", t.ckpt_path)
    t.step_loss = compiled_loss(model, cfg)
    log.info("model: %s (%s) parameters (numel), %d layers x %d, context %d, vocab %d; device %s, %s%s",
             cfg.model, f"{t.n_params:,}", cfg.n_layer, cfg.n_embd, cfg.seq_length, vocab, rt.device_name,
             "bf16 autocast" if rt.amp_dtype is not None else "fp32", ", torch.compile" if cfg.compile else "")
    return t


def _loop(t: Training, stop_after: int | None) -> str:
    """Optimizer steps until the budget is spent; returns why it stopped."""
    import torch

    if t.rt.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(t.rt.device)
    t.sync()
    t.t_start = time.perf_counter() - t.state["elapsed_s"]  # a resumed run continues its clock
    t.clock = Throughput(t.cfg.tokens_per_step)
    loss_acc = torch.zeros((), device=t.rt.device)  # summed on the device: no sync per step
    while True:
        reason = _stop_reason(t, stop_after)
        if reason:
            return reason
        _profile_toggle(t)
        started = time.perf_counter()
        lr, grad_norm = _optimizer_step(t, loss_acc)
        _after_step(t, started, lr, grad_norm, loss_acc)


def _stop_reason(t: Training, stop_after: int | None) -> str | None:
    if t.state["step"] >= t.cfg.max_steps:
        return "max_steps"
    if t.cfg.time_budget_s and t.state["elapsed_s"] >= t.cfg.time_budget_s:
        return "time_budget"
    if stop_after is not None and t.steps_this_run >= stop_after:
        return "stop_after"
    return None


def _optimizer_step(t: Training, loss_acc) -> tuple[float, Any]:
    """One step of grad_accum micro-batches; returns (lr, grad norm before clipping or None)."""
    import torch

    cfg = t.cfg
    lr = lr_at(cfg, t.state["step"], t.progress())
    for g in t.optimizer.param_groups:
        g["lr"] = lr
    for _ in range(cfg.grad_accum):
        x = _to_device(t.data.train[t.sampler.next()], t.rt.device)
        with t.autocast():
            loss = t.step_loss(x) / cfg.grad_accum
        loss.backward()
        loss_acc += loss.detach()
    grad_norm = torch.nn.utils.clip_grad_norm_(t.model.parameters(), cfg.grad_clip) if cfg.grad_clip else None
    t.optimizer.step()
    t.optimizer.zero_grad(set_to_none=True)
    return lr, grad_norm


def _after_step(t: Training, started: float, lr: float, grad_norm, loss_acc) -> None:
    """Count the step, then log, evaluate and checkpoint when their turn has come."""
    cfg, state = t.cfg, t.state
    state["step"] += 1
    t.steps_this_run += 1
    state["tokens"] += cfg.tokens_per_step
    log_now = state["step"] % cfg.log_every == 0 or state["step"] == cfg.max_steps
    if log_now:
        t.sync()  # only here: a sync every step would stall the GPU's queue
    t.clock.add_step(time.perf_counter() - started)
    state["elapsed_s"] = time.perf_counter() - t.t_start
    if log_now:
        _log_train(t, lr, grad_norm, loss_acc)
    if cfg.eval_every and state["step"] % cfg.eval_every == 0:
        _evaluate(t)
    if cfg.checkpoint_every and state["step"] % cfg.checkpoint_every == 0:
        _save_checkpoint(t.ckpt_path, t.model, t.optimizer, t.sampler, state, cfg)
    if log_now:
        t.clock.restart()


def _profile_toggle(t: Training) -> None:
    """Start torch.profiler at step lm.profile_at, stop it lm.profile_steps steps later and keep
    its kernel table; the log interval it ran in is not counted as steady state."""
    cfg, step = t.cfg, t.state["step"]
    if not cfg.profile_at or t.rt.device.type != "cuda":
        return
    if step == cfg.profile_at and t.profiler is None:
        import torch

        t.sync()
        t.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA])
        t.profiler.__enter__()
    elif step == cfg.profile_at + cfg.profile_steps and t.profiler is not None:
        _profile_finish(t)


def _profile_finish(t: Training) -> None:
    from codecorpus.lm import profile as P

    t.sync()
    t.profiler.__exit__(None, None, None)
    cfg = t.cfg
    linear = cfg.n_layer * 12 * cfg.n_embd ** 2 + t.hf_config.vocab_size * cfg.n_embd  # matmul weights
    t.profile = P.table(P.kernel_times(t.profiler), cfg.profile_steps,
                        matmul_flops_per_step=6.0 * linear * cfg.tokens_per_step,
                        attention_calls_per_step=cfg.n_layer * cfg.grad_accum)
    t.profiler = None
    t.clock.discard = True
    t.log.emit({"event": "profile", "step": t.state["step"], **{k: v for k, v in t.profile.items()
                                                                 if k != "top_kernels"}})


def _log_train(t: Training, lr: float, grad_norm, loss_acc) -> None:
    tps, steps = t.clock.close_interval()
    rec = {"event": "train", "step": t.state["step"], "tokens": t.state["tokens"],
           "loss": round(float(loss_acc) / steps, 4), "lr": lr,
           "grad_norm": round(float(grad_norm), 3) if grad_norm is not None else None,
           "tokens_per_s": round(tps), "elapsed_s": round(t.state["elapsed_s"], 1),
           "epochs": round(t.sampler.epochs, 3)}
    if t.rt.peak_flops:
        rec["mfu"] = round(flops_per_token(t.cfg, t.n_params)[0] * tps / t.rt.peak_flops, 4)
    t.log.emit(rec)
    loss_acc.zero_()


def _evaluate(t: Training) -> float:
    """Validation loss now: recorded, logged, and offered as the best weights."""
    v = evaluate(t.model, t.data.valid, t.cfg, t.rt)
    state = t.state
    state["evals"].append({"step": state["step"], "tokens": state["tokens"], "valid_loss": v})
    if t.cfg.keep_best:
        t.best.offer(v, state["step"], t.model)
    t.log.emit({"event": "eval", "step": state["step"], "tokens": state["tokens"], "valid_loss": round(v, 4),
                "valid_ppl": round(math.exp(min(v, 50)), 2), "elapsed_s": round(state["elapsed_s"], 1)})
    return v


def _finish(t: Training, tokenizer, out_dir: str, stop_reason: str, save_model: bool, checkpoint: bool = True) -> dict:
    """Final evaluation and checkpoint; the model directory (best or last weights) unless the
    run was interrupted on purpose; the summary."""
    if t.profiler is not None:  # the run ended inside the profiled steps
        _profile_finish(t)
    evals = t.state["evals"]
    final_loss = evals[-1]["valid_loss"] if evals and evals[-1]["step"] == t.state["step"] else _evaluate(t)
    t.state["elapsed_s"] = time.perf_counter() - t.t_start
    if checkpoint:  # the last state, to resume
        _save_checkpoint(t.ckpt_path, t.model, t.optimizer, t.sampler, t.state, t.cfg)
    if t.cfg.model == "hf":
        t.model.config.use_cache = True
    saved = "last"
    if t.cfg.keep_best and t.best.weights is not None and t.best.loss < final_loss:
        t.model.load_state_dict(t.best.weights)
        saved = f"best (step {t.best.step})"
    if save_model and stop_reason != "stop_after":
        hf = t.model if t.cfg.model == "hf" else _as_hf(t)
        hf.generation_config.pad_token_id = tokenizer.eos_token_id
        hf.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    summary = _summary(t, stop_reason, final_loss, saved)
    with open(os.path.join(out_dir, SUMMARY), "w") as f:
        json.dump(summary, f, indent=2)
    t.log.emit({"event": "done", **{k: v for k, v in summary.items() if k not in ("config", "evals", "data")}})
    return summary


def _as_hf(t: Training):
    from codecorpus.lm.model import to_hf

    hf = to_hf(t.model, t.hf_config)
    hf.config.use_cache = True
    return hf


def _summary(t: Training, stop_reason: str, final_loss: float, saved: str) -> dict:
    import torch

    cfg, rt, state, clock = t.cfg, t.rt, t.state, t.clock
    fpt, fpt_attn = flops_per_token(cfg, t.n_params)
    steady = clock.steady

    def mfu(flops: float) -> float | None:
        return round(flops * steady / rt.peak_flops, 4) if steady and rt.peak_flops else None

    return {
        "n_params": t.n_params, "config": dataclasses.asdict(cfg), "device": rt.device_name,
        "precision": "bf16 autocast" if rt.amp_dtype is not None else "fp32",
        "steps": state["step"], "tokens": state["tokens"], "epochs": round(t.sampler.epochs, 3),
        "stop_reason": stop_reason, "elapsed_s": round(state["elapsed_s"], 1),
        "steps_this_run": t.steps_this_run, "step_time_s": round(clock.step_time, 1),
        "tokens_per_s_steady": round(steady) if steady else None,
        "tokens_per_s_overall": round(t.steps_this_run * cfg.tokens_per_step / clock.step_time)
        if clock.step_time else None,
        "peak_flops": rt.peak_flops, "flops_per_token_6n": fpt, "flops_per_token_with_attn": fpt_attn,
        "mfu": mfu(fpt), "mfu_attn": mfu(fpt_attn),
        "final_valid_loss": round(final_loss, 4), "final_valid_ppl": round(math.exp(min(final_loss, 50)), 3),
        "best_valid_loss": round(min(t.best.loss, final_loss), 4), "saved_weights": saved,
        "evals": state["evals"], "data": t.data.info, "profile": t.profile,
        "peak_memory_gib": round(torch.cuda.max_memory_allocated(rt.device) / 2**30, 2)
        if rt.device.type == "cuda" else None,
        "compiled": _compile_stats() if cfg.compile else None,
    }


def _compile_stats() -> dict:
    """How many graphs torch.compile made and why it broke any (one graph, no breaks, is the aim:
    GPT2LMHeadModel's loss broke its graph in two)."""
    from torch._dynamo.utils import counters

    return {"unique_graphs": int(counters["stats"].get("unique_graphs", 0)),
            "graph_breaks": {str(k)[:160]: int(v) for k, v in counters["graph_break"].items()}}
