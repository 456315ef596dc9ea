"""The `stats` section of the report: corpus figures from `stats/stats.json`."""
from __future__ import annotations

import math


def section(ctx) -> str | None:
    stats = ctx.read_json("stats.json")
    if not stats:
        return None
    parts = [f"<p>{stats['files']:,} files, {stats['bytes'] / 1e6:,.1f} MB, {stats['repos']:,} repositories; "
             f"median file {stats['size_bytes']['p50']:,} bytes, largest {stats['size_bytes']['max']:,}.</p>"]
    ing = stats.get("ingest")
    if ing:
        parts.append(f"<p>Ingest: {ing['lines_read']:,} lines read from {ing['shards']} shards = "
                     f"{ing['rows_ingested']:,} rows + {ing['rows_quarantined']:,} quarantined "
                     f"{ing['quarantine_reasons'] or ''}.</p>")
    parts.append(ctx.savefig(_size_histogram(stats["size_histogram"]), "size_histogram"))
    parts.append(ctx.savefig(_bars([(x["license"], x["files"]) for x in stats["licenses"][:15]], "Licences",
                                   (7, 3.2)), "licenses"))
    repos = stats["top_repos"][:15]
    parts.append(ctx.savefig(_bars([(r["repo_name"], r["files"]) for r in repos], f"Top {len(repos)} repositories",
                                   (7, 4)), "top_repos"))
    dup = stats["exact_duplicates"]
    parts.append(ctx.savefig(_duplicate_share(dup), "duplicate_share"))
    parts.append(f"<p>Exact duplicates: {dup['duplicate_files']:,} files "
                 f"({dup['duplicate_share_files']:.1%}), {dup['duplicate_bytes'] / 1e6:,.1f} MB "
                 f"({dup['duplicate_share_bytes']:.1%}); largest group {dup['largest_group']:,} copies.</p>")
    if math.isfinite(stats["size_bytes"]["mean"]):
        parts.append(ctx.table([{"statistic": k, "bytes": v} for k, v in stats["size_bytes"].items()]))
    return "\n".join(parts)


def _size_histogram(hist: list[dict]):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    lefts = [max(h["lo"], 1) for h in hist]  # a log axis has no 0: the empty-file bin starts at 1
    widths = [max(h["hi"], 1) - max(h["lo"], 1) or 1 for h in hist]
    ax.bar(lefts, [h["files"] for h in hist], width=widths, align="edge", edgecolor="black")
    ax.set_xscale("log")
    ax.set_xlabel("file size (bytes, log scale)")
    ax.set_ylabel("files")
    ax.set_title("File sizes")
    return fig


def _bars(items: list[tuple[str, int]], title: str, size: tuple):
    """Horizontal bars of files per name, the first item on top."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    ax.barh([name for name, _ in items][::-1], [files for _, files in items][::-1])
    ax.set_xlabel("files")
    ax.set_title(title)
    return fig


def _duplicate_share(dup: dict):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 2.6))
    shares = [dup["duplicate_share_files"], dup["duplicate_share_bytes"]]
    ax.bar(["files", "bytes"], [s * 100 for s in shares], color=["#c44", "#c84"])
    ax.set_ylim(0, 100)
    ax.set_ylabel("% exact duplicates")
    ax.set_title("Exact-duplicate share (whitespace-insensitive)")
    return fig
