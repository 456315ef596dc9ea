"""Stage `report`: `report/index.html` with PNG plots, and `report/summary.json` (every stage's
counts and the corpus statistics in one file).

It reads only stage markers and JSON files, never Parquet, so it runs in seconds and needs no
executors. Each stage module may contribute a section with `report_section(ctx)`.
"""
from __future__ import annotations

import html
import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..io import fs
from ..stage import Counts, StageOutputs, load_counts

log = logging.getLogger("codecorpus")

NAME = "report"
OUTPUTS = ["report"]


@dataclass
class ReportContext:
    cfg: Config
    root: str
    folder: str  # where index.html and the PNGs are written
    counts: dict[str, Counts] = field(default_factory=dict)

    def read_json(self, rel: str) -> Any | None:
        path = f"{self.root.rstrip('/')}/{rel}"
        return fs.read_json(path) if fs.exists(path) else None

    def savefig(self, fig, name: str) -> str:
        import matplotlib.pyplot as plt

        fig.tight_layout()
        fig.savefig(f"{fs.local_path(self.folder)}/{name}.png", dpi=90)
        plt.close(fig)
        return f'<img src="{name}.png" alt="{html.escape(name)}">'

    @staticmethod
    def table(rows: list[dict]) -> str:
        if not rows:
            return "<p><i>(empty)</i></p>"
        head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>"
                       for r in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def funnel_rows(counts: dict[str, Counts]) -> list[dict]:
    rows = []
    for name, c in counts.items():
        rows.append({"stage": name, "rows in": f"{c.rows_in:,}", "rows out": f"{c.rows_out:,}",
                     "dropped": ", ".join(f"{k}: {v:,}" for k, v in sorted(c.dropped.items())) or "-",
                     "quarantined": f"{c.quarantined:,}", "seconds": c.seconds})
    return rows


def render(ctx: ReportContext) -> str:
    from ..stages import STAGES, module_for

    sections = [("Stages", "<p>Every stage accounts for its rows: in = out + dropped + quarantined.</p>"
                 + ctx.table(funnel_rows(ctx.counts)))]
    # Stage sections in pipeline order, then the on-purpose stages that leave JSON under the root
    # (the GPU run's results copied to <output>/lm/).
    for stage in [*STAGES, "lm"]:
        if stage == NAME:
            continue
        try:
            mod = importlib.import_module("codecorpus.lm.report") if stage == "lm" else module_for(stage)
        except ImportError:
            continue  # a stage not installed in this build
        fn = getattr(mod, "report_section", None)
        if fn is None:
            continue
        try:
            body = fn(ctx)
        except Exception as exc:  # a broken section must not cost the whole report
            log.warning("[report] section %s failed: %s", stage, exc)
            body = f"<p class='error'>section failed: {html.escape(str(exc))}</p>"
        if body:
            sections.append((stage, body))
    toc = "".join(f'<li><a href="#{html.escape(t)}">{html.escape(t)}</a></li>' for t, _ in sections)
    content = "".join(f'<section id="{html.escape(t)}"><h2>{html.escape(t)}</h2>{b}</section>'
                      for t, b in sections)
    from importlib.resources import files

    template = files("codecorpus.report").joinpath("template.html").read_text()  # works from a zip too
    return (template.replace("{{title}}", "codecorpus report")
            .replace("{{input}}", html.escape(ctx.cfg.input)).replace("{{toc}}", toc)
            .replace("{{content}}", content))


def build(spark, cfg: Config, out: StageOutputs) -> Counts:
    from ..stages import STAGES

    import matplotlib

    matplotlib.use("Agg")
    folder = out.tmp("report")
    fs.makedirs(folder)
    counts = {s: c for s in STAGES if s != NAME and (c := load_counts(cfg.output, s)) is not None}
    ctx = ReportContext(cfg=cfg, root=cfg.output, folder=folder, counts=counts)
    fs.write_text_atomic(f"{folder}/index.html", render(ctx))
    summary = {"stages": {k: v.to_dict() for k, v in counts.items()},
               "corpus": ctx.read_json("stats/stats.json")}
    fs.write_json_atomic(f"{folder}/summary.json", summary)
    log.info("[report] %s/report/index.html", cfg.output)
    return Counts(stage=NAME, rows_in=0, rows_out=0, extra={"sections": len(counts)})
