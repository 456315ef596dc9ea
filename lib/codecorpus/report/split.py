"""The `split` section of the report."""
from __future__ import annotations


def section(ctx) -> str | None:
    c = ctx.counts.get("split")
    if c is None:
        return None
    sp = c.extra["splits"]
    rows = [{"split": s, "files": f"{v['files']:,}", "MB": f"{v['bytes'] / 1e6:,.1f}", "repositories": v["repos"]}
            for s, v in sp.items()]
    return (f"<p>Split by <b>{c.extra['by']}</b>; repositories in both splits: "
            f"{c.extra['repos_in_both_splits']}.</p>" + ctx.table(rows))
