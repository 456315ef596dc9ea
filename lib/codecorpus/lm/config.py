"""The language-model training config: one frozen dataclass, named presets, TOML and --set overrides.

Kept apart from `codecorpus.core.config.Config` on purpose: training runs on a machine without Spark
and is driven by its own script, so it carries its own small config.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from codecorpus.core.errors import ConfigError


@dataclass(frozen=True)
class LMConfig:
    # --- model (GPT2Config); vocab_size 0 = the tokenizer's size
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    seq_length: int = 1024
    vocab_size: int = 0
    dropout: float = 0.0  # short runs from scratch do not overfit; dropout only slows learning
    attn_implementation: str = "sdpa"  # "sdpa" (flash / memory-efficient kernels) | "eager"
    # --- optimisation (codeparrot-small: AdamW, weight decay 0.1, warmup + cosine)
    micro_batch_size: int = 32
    grad_accum: int = 2
    lr: float = 6e-4
    min_lr_ratio: float = 0.1  # cosine ends at lr * min_lr_ratio
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    # --- budget: stop at whichever comes first; the cosine follows the same progress
    max_steps: int = 100000
    time_budget_s: float = 0.0  # 0 = no time limit (then max_steps alone)
    # --- evaluation, logging, checkpoints (in optimizer steps; 0 = off)
    eval_every: int = 200
    eval_batches: int = 20
    log_every: int = 20
    checkpoint_every: int = 0  # a checkpoint is always written at the end
    # save the weights of the best validation loss, not the last (a small corpus is overfitted
    # within minutes); checkpoint.pt always holds the last state, for resuming
    keep_best: bool = True
    # --- runtime
    seed: int = 42
    dtype: str = "auto"  # "auto" (bf16 autocast on CUDA, fp32 on CPU) | "bf16" | "fp32"
    compile: bool = False
    # --- data
    valid_fraction: float = 0.02  # raw text input without a valid set: held out by repository hash
    max_train_tokens: int = 0  # 0 = tokenize all of it
    max_valid_tokens: int = 2_000_000

    def __post_init__(self) -> None:
        for name in ("n_layer", "n_head", "n_embd", "seq_length", "micro_batch_size", "grad_accum",
                     "max_steps", "eval_batches", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"lm.{name} = {getattr(self, name)!r}: must be at least 1")
        for name in ("vocab_size", "warmup_steps", "eval_every", "checkpoint_every",
                     "max_train_tokens", "max_valid_tokens"):
            if getattr(self, name) < 0:
                raise ConfigError(f"lm.{name} = {getattr(self, name)!r}: must not be negative")
        if self.n_embd % self.n_head:
            raise ConfigError(f"lm.n_embd = {self.n_embd} is not divisible by lm.n_head = {self.n_head}")
        if self.lr <= 0 or not (0 <= self.min_lr_ratio <= 1):
            raise ConfigError("lm.lr must be positive and lm.min_lr_ratio between 0 and 1")
        if not (0 <= self.dropout < 1) or not (0 <= self.valid_fraction < 1):
            raise ConfigError("lm.dropout and lm.valid_fraction must be in [0, 1)")
        if self.time_budget_s < 0:
            raise ConfigError("lm.time_budget_s must not be negative")
        if self.attn_implementation not in ("sdpa", "eager"):
            raise ConfigError(f"lm.attn_implementation = {self.attn_implementation!r}: expected sdpa or eager")
        if self.dtype not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"lm.dtype = {self.dtype!r}: expected auto, bf16 or fp32")

    @property
    def tokens_per_step(self) -> int:
        return self.micro_batch_size * self.grad_accum * self.seq_length

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "LMConfig":
        return _build({**self.to_dict(), **changes})


# `small` is codeparrot-small's shape (GPT-2 small: 12 x 768, context 1024; ~111M parameters with a
# 32,768-token vocabulary); its batch is smaller (64k tokens a step, not 196k) because our runs are
# minutes long and more, smaller steps learn more in a fixed time.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(n_layer=2, n_head=2, n_embd=64, seq_length=64, micro_batch_size=8, grad_accum=2,
                 lr=3e-3, warmup_steps=5, max_steps=40, eval_every=10, eval_batches=2, log_every=5,
                 max_valid_tokens=20_000),
    # torch.compile doubles small's training throughput on an H200 (239k -> 477k tokens/s, for
    # ~20 s of compilation; docs/gpu-run.md), so small compiles by default.
    "small": dict(compile=True),
}


def _coerce(name: str, hint: type, value: Any) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConfigError(f"lm.{name} = {value!r}: expected true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"lm.{name} = {value!r}: expected an integer")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"lm.{name} = {value!r}: expected a number")
    if not isinstance(value, str):
        raise ConfigError(f"lm.{name} = {value!r}: expected a string")
    return value


def _build(data: dict[str, Any]) -> LMConfig:
    hints = {f.name: f.type for f in fields(LMConfig)}
    hints = {k: {"int": int, "float": float, "bool": bool, "str": str}[v] if isinstance(v, str) else v
             for k, v in hints.items()}
    unknown = sorted(set(data) - set(hints))
    if unknown:
        raise ConfigError(f"unknown lm config key(s): {', '.join(unknown)}")
    return LMConfig(**{k: _coerce(k, hints[k], v) for k, v in data.items()})


def parse_set(item: str) -> tuple[str, Any]:
    """`key=value`, the value read as a TOML literal when it is one (else kept as a string)."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value")
    key, raw = item.split("=", 1)
    key = key.strip().removeprefix("lm.")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def load_lm_config(preset: str = "small", toml_path: str | None = None,
                   overrides: list[str] | None = None) -> LMConfig:
    """The preset, then the TOML file's keys (top level or an [lm] table), then --set overrides."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}: expected one of {', '.join(PRESETS)}")
    data: dict[str, Any] = dict(PRESETS[preset])
    if toml_path:
        path = Path(toml_path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            doc = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        data.update(doc.get("lm", doc))
    data.update(dict(parse_set(o) for o in overrides or []))
    return _build(data)
