"""The report's page: a context the sections draw with, and the HTML they are laid into."""
from __future__ import annotations

import html
import io
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from codecorpus.core.config import Config
from codecorpus.core.stage import Counts
from codecorpus.io import fs
from codecorpus.io.layout import RunLayout

log = logging.getLogger("codecorpus")


@dataclass
class ReportContext:
    cfg: Config
    root: str
    folder: str  # where index.html and the PNGs are written
    counts: dict[str, Counts] = field(default_factory=dict)

    def read_json(self, location: str, *inside: str) -> Any | None:
        """A JSON file of the run, by layout name (and a file name inside that folder)."""
        path = "/".join([RunLayout(self.root).path(location), *inside])
        return fs.read_json(path) if fs.exists(path) else None

    def savefig(self, fig, name: str) -> str:
        import matplotlib.pyplot as plt

        fig.tight_layout()
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=90)
        fs.write_bytes_atomic(f"{self.folder}/{name}.png", png.getvalue())
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
                     "quarantined": f"{c.quarantined:,}", "seconds": c.seconds,
                     "output digests": " ".join(f"{k}={v.split(':')[-1][:8]}" for k, v in sorted(c.digests.items())),
                     "note": f"skipped: {c.skipped}" if c.skipped else ""})
    return rows


def safe_section(title: str, fn: Callable[[ReportContext], str | None], ctx: ReportContext) -> str | None:
    try:
        return fn(ctx)
    except Exception as exc:  # a broken section must not cost the whole report
        log.warning("[report] section %s failed: %s", title, exc)
        return f"<p class='error'>section failed: {html.escape(str(exc))}</p>"


def render(ctx: ReportContext, sections: list[tuple[str, Callable[[ReportContext], str | None]]]) -> str:
    parts = [("Stages", "<p>Every stage accounts for its rows: in = out + dropped + quarantined. The output "
              "digests are order-independent hashes of every row (jobs/verify.py compares two runs by them).</p>"
              + ctx.table(funnel_rows(ctx.counts)))]
    for title, fn in sections:
        body = safe_section(title, fn, ctx)
        if body:
            parts.append((title, body))
    toc = "".join(f'<li><a href="#{html.escape(t)}">{html.escape(t)}</a></li>' for t, _ in parts)
    content = "".join(f'<section id="{html.escape(t)}"><h2>{html.escape(t)}</h2>{b}</section>' for t, b in parts)
    from importlib.resources import files

    template = files("codecorpus.report").joinpath("template.html").read_text()  # works from a zip too
    return (template.replace("{{title}}", "codecorpus report")
            .replace("{{input}}", html.escape(ctx.cfg.input)).replace("{{toc}}", toc)
            .replace("{{content}}", content))
