"""Stage `report`: `report/index.html` with PNG plots, and `report/summary.json` (every stage's
counts and the corpus statistics in one file).

It reads only stage markers and JSON files, never Parquet, so it runs in seconds and needs no
executors. The sections and their plots live in the `codecorpus.report` package.
"""
from __future__ import annotations

import logging

from codecorpus.core.config import Config
from codecorpus.core.stage import Counts, StageIO
from codecorpus.io import fs

log = logging.getLogger("codecorpus")

NAME = "report"


def build(spark, cfg: Config, io: StageIO) -> Counts:
    import matplotlib

    matplotlib.use("Agg")
    from codecorpus.report import SECTIONS
    from codecorpus.report.render import ReportContext, render

    folder = io.output("report")
    fs.makedirs(folder)
    counts = {s: c for s in io.upstream if (c := io.counts(s)) is not None}
    ctx = ReportContext(cfg=cfg, root=cfg.output, folder=folder, counts=counts)
    fs.write_text_atomic(io.output("report.index"), render(ctx, SECTIONS))
    summary = {"stages": {k: v.to_dict() for k, v in counts.items()}, "corpus": ctx.read_json("stats.json")}
    fs.write_json_atomic(io.output("report.summary"), summary)
    log.info("[report] %s", io.final("report.index"))
    return Counts(stage=NAME, rows_in=0, rows_out=0, extra={"sections": len(counts)})
