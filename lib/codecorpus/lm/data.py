"""What the GPU stage trains on: a pipeline run's tokenizer/ and tokens/{train,valid}, read
without Spark through `io/` and checked against tokens/meta.json.

`lm.seq_length` must equal the seq_length in tokens/meta.json (the run's `tokens.seq_length`):
a mismatch is a UserError naming both settings, never a silent re-cut of the stream, so the
model trains on exactly the sequences the run describes. The tokens must also have been made
by the run's tokenizer (meta.json's sha256 of tokenizer.json): ids from another vocabulary
would train without any error and mean nothing.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from codecorpus.core.config import LmConfig
from codecorpus.core.errors import UserError
from codecorpus.io import fs
from codecorpus.io.layout import RunLayout
from codecorpus.io.packed import read_sequences
from codecorpus.lm import export

log = logging.getLogger("codecorpus")


@dataclass
class DataSets:
    train: np.ndarray  # [n, seq_length] token ids
    valid: np.ndarray
    info: dict = field(default_factory=dict)


def load_run(root: str, cfg: LmConfig):
    """(tokenizer, DataSets) of the run at `root`, capped at lm.max_train_tokens / max_valid_tokens."""
    from codecorpus.tokenizer.load import load_tokenizer

    if not fs.is_local(root):  # the trainer memory-maps the packed shards
        raise UserError(f"the GPU stage reads a run from local disk; {root} is not local: copy its "
                        "tokenizer/, tokens/ and _stages/ to a local folder (or use jobs/export_run.py on it)")
    layout = RunLayout(root)
    meta = read_meta(layout)
    check_meta(meta, cfg, layout)
    tokenizer = load_tokenizer(layout.path("tokenizer"))
    started = time.perf_counter()
    man = export.manifest(layout.root)
    if man is None:
        train = read_split(layout.path("tokens.train"), cfg.seq_length, cfg.max_train_tokens)
        valid = read_split(layout.path("tokens.valid"), cfg.seq_length, cfg.max_valid_tokens)
    else:  # an exported run (jobs/export_run.py): maybe packed here from dataset/, always checked
        train = _cap(export.packed_split(layout.root, "train", meta, man), cfg.seq_length, cfg.max_train_tokens)
        valid = _cap(export.packed_split(layout.root, "valid", meta, man), cfg.seq_length, cfg.max_valid_tokens)
    info = {"run": layout.root, "export": {k: man[k] for k in ("form", "source")} if man else None, "seq_length": cfg.seq_length, "tokenizer_sha256": meta["tokenizer"]["sha256"],
            "train_sequences": len(train), "valid_sequences": len(valid), "train_tokens": int(train.size),
            "valid_tokens": int(valid.size), "load_s": round(time.perf_counter() - started, 1),
            "chars_per_token": meta.get("splits", {}).get("train", {}).get("chars_per_token")}
    log.info("[lm] %s: %s train and %s valid sequences of %d tokens", layout.root, f"{len(train):,}",
             f"{len(valid):,}", cfg.seq_length)
    return tokenizer, DataSets(train, valid, info)


def _cap(rows: np.ndarray, seq_length: int, max_tokens: int) -> np.ndarray:
    return rows[: -(-max_tokens // seq_length)] if max_tokens else rows


def read_meta(layout: RunLayout) -> dict:
    from codecorpus.core.stage import load_counts

    path = layout.path("tokens.meta")
    if fs.exists(path):
        return fs.read_json(path)
    counts = load_counts(layout.root, "tokens")
    if counts is not None and counts.extra.get("skipped"):  # say why rather than "run it"
        raise UserError(f"{path} not found: the tokens stage was skipped on {layout.root} "
                        f"({counts.extra['skipped']})")
    raise UserError(f"{path} not found: run the tokens stage on {layout.root} first (jobs/tokens.py)")


def check_meta(meta: dict, cfg: LmConfig, layout: RunLayout) -> None:
    from codecorpus.tokenizer.load import tokenizer_json

    if meta["seq_length"] != cfg.seq_length:
        raise UserError(f"{layout.path('tokens.meta')}: the run's sequences are {meta['seq_length']} tokens "
                        f"long but lm.seq_length = {cfg.seq_length}; train with --set "
                        f"lm.seq_length={meta['seq_length']} or rebuild the tokens with "
                        f"tokens.seq_length={cfg.seq_length}")
    text = tokenizer_json(layout.path("tokenizer"), "the run's tokenizer")
    if hashlib.sha256(text.encode("utf-8")).hexdigest() != meta["tokenizer"]["sha256"]:
        raise UserError(f"{layout.path('tokens')} was made with another tokenizer than "
                        f"{layout.path('tokenizer.json')}: run the tokens stage again (--force)")


def read_split(folder: str, seq_length: int, max_tokens: int) -> np.ndarray:
    if not fs.exists(folder):
        raise UserError(f"{folder} not found: run the tokens stage first")
    try:
        rows = read_sequences(fs.local_path(folder), seq_length, max_rows=-(-max_tokens // seq_length))
    except (FileNotFoundError, ValueError) as exc:  # an empty or foreign folder: say which
        raise UserError(str(exc)) from None
    if not len(rows):
        raise UserError(f"{folder}: no {seq_length}-token sequence to train or validate on "
                        "(a larger corpus, or a smaller tokens.seq_length)")
    return rows
