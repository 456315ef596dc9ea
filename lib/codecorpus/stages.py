"""The pipeline's stages, in order, and how each one is run under the stage contract.

A stage module exposes `NAME`, `OUTPUTS` (folders under the output root) and
`build(spark, cfg, out) -> Counts`; `spark` is None for stages that need no Spark (the
tokenizer stages run on the driver). The data chain ingest -> clean -> dedup -> split skips
stages turned off in the config.
"""
from __future__ import annotations

import importlib
import logging
from typing import Any

from .config import Config
from .errors import UserError
from .stage import Counts, run_stage

log = logging.getLogger("codecorpus")

# Stage name -> module under codecorpus. Order is the pipeline's order.
STAGES: dict[str, str] = {
    "ingest": "ingest",
    "stats": "stats",
    "clean": "clean.stage",
    "dedup": "dedup.stage",
    "split": "split",
    "train_tokenizer": "tokenizer.train_stage",
    "eval_tokenizer": "tokenizer.eval_stage",
    "tokenize": "pack",
    "report": "report",
}


def module_for(stage: str) -> Any:
    if stage not in STAGES:
        raise UserError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    return importlib.import_module(f"codecorpus.{STAGES[stage]}")


def enabled(cfg: Config, stage: str) -> bool:
    section = getattr(cfg, stage, None)
    return bool(getattr(section, "enabled", True))


def data_input(cfg: Config, stage: str) -> str:
    """Folder of the rows a data stage reads: the output of the nearest enabled stage before it."""
    chain = ["ingest", "clean", "dedup"]
    order = list(STAGES)
    before = [s for s in chain if order.index(s) < order.index(stage) and enabled(cfg, s)]
    return f"{cfg.output.rstrip('/')}/{before[-1]}"


def run_one(spark, cfg: Config, stage: str, force: bool = False) -> Counts | None:
    if not enabled(cfg, stage):
        log.info("[%s] turned off in the config, skipping", stage)
        return None
    mod = module_for(stage)
    return run_stage(cfg.output, mod.NAME, mod.OUTPUTS, lambda out: mod.build(spark, cfg, out), force=force)


def run_many(spark, cfg: Config, stages: list[str], force: bool = False) -> dict[str, Counts]:
    results = {}
    for stage in stages:
        counts = run_one(spark, cfg, stage, force=force)
        if counts is not None:
            results[stage] = counts
    return results
