"""The `stats` section of the report."""
from __future__ import annotations

import math


def section(ctx) -> str | None:
    stats = ctx.read_json("stats.json")
    if not stats:
        return None
    import matplotlib.pyplot as plt

    parts = [f"<p>{stats['files']:,} files, {stats['bytes'] / 1e6:,.1f} MB, {stats['repos']:,} repositories; "
             f"median file {stats['size_bytes']['p50']:,} bytes, largest {stats['size_bytes']['max']:,}.</p>"]
    ing = stats.get("ingest")
    if ing:
        parts.append(f"<p>Ingest: {ing['lines_read']:,} lines read from {ing['shards']} shards = "
                     f"{ing['rows_ingested']:,} rows + {ing['rows_quarantined']:,} quarantined "
                     f"{ing['quarantine_reasons'] or ''}.</p>")

    fig, ax = plt.subplots(figsize=(7, 3.2))
    hist = stats["size_histogram"]
    lefts = [max(h["lo"], 1) for h in hist]
    widths = [max(h["hi"], 1) - max(h["lo"], 1) or 1 for h in hist]
    ax.bar(lefts, [h["files"] for h in hist], width=widths, align="edge", edgecolor="black")
    ax.set_xscale("log")
    ax.set_xlabel("file size (bytes, log scale)")
    ax.set_ylabel("files")
    ax.set_title("File sizes")
    parts.append(ctx.savefig(fig, "size_histogram"))

    lic = stats["licenses"][:15]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.barh([l["license"] for l in lic][::-1], [l["files"] for l in lic][::-1])
    ax.set_xlabel("files")
    ax.set_title("Licences")
    parts.append(ctx.savefig(fig, "licenses"))

    repos = stats["top_repos"][:15]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.barh([r["repo_name"] for r in repos][::-1], [r["files"] for r in repos][::-1])
    ax.set_xlabel("files")
    ax.set_title(f"Top {len(repos)} repositories")
    fig.tight_layout()
    parts.append(ctx.savefig(fig, "top_repos"))

    dup = stats["exact_duplicates"]
    fig, ax = plt.subplots(figsize=(5, 2.6))
    shares = [dup["duplicate_share_files"], dup["duplicate_share_bytes"]]
    ax.bar(["files", "bytes"], [s * 100 for s in shares], color=["#c44", "#c84"])
    ax.set_ylim(0, 100)
    ax.set_ylabel("% exact duplicates")
    ax.set_title("Exact-duplicate share (whitespace-insensitive)")
    parts.append(ctx.savefig(fig, "duplicate_share"))
    parts.append(f"<p>Exact duplicates: {dup['duplicate_files']:,} files "
                 f"({dup['duplicate_share_files']:.1%}), {dup['duplicate_bytes'] / 1e6:,.1f} MB "
                 f"({dup['duplicate_share_bytes']:.1%}); largest group {dup['largest_group']:,} copies.</p>")
    if math.isfinite(stats["size_bytes"]["mean"]):
        parts.append(ctx.table([{"statistic": k, "bytes": v} for k, v in stats["size_bytes"].items()]))
    return "\n".join(parts)
