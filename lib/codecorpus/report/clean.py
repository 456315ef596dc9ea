"""The `clean` section of the report: the funnel (in the order the filters ran), duplicates,
licences, secrets, the opt-out list and decontamination, from the clean stage's counts."""
from __future__ import annotations

import html


def section(ctx) -> str | None:
    counts = ctx.counts.get("clean")
    if counts is None or "funnel" not in counts.extra:
        return None
    extra = counts.extra
    return "".join([
        ctx.savefig(_funnel_figure(extra["funnel"]), "clean_funnel"),
        _duplicates(ctx, extra["duplicates"]),
        _licenses(ctx, extra["licenses"]),
        _secrets(extra["secrets"]),
        _opt_out(extra.get("opt_out"), counts.dropped.get("opt_out", 0)),
        _decontamination(extra["decontamination"], counts.dropped.get("contaminated", 0)),
    ])


def _funnel_figure(funnel: list[dict]):
    import matplotlib.pyplot as plt

    steps = [f["step"] for f in funnel]
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.35 * len(steps) + 1.2), sharey=True)
    colors = ["tab:blue"] + ["tab:red"] * (len(steps) - 2) + ["tab:green"]
    for ax, key, unit, scale in ((axes[0], "rows", "files", 1), (axes[1], "bytes", "MB", 1e6)):
        values = [f[key] / scale for f in funnel]
        ax.barh(steps[::-1], values[::-1], color=colors[::-1])  # top to bottom in funnel order
        ax.set_xlabel(unit)
        for y, v in enumerate(values[::-1]):
            ax.text(v, y, f" {v:,.0f}" if scale == 1 else f" {v:,.1f}", va="center", fontsize=8)
    axes[0].set_title("Clean funnel: files in, dropped per reason, out")
    axes[1].set_title("... and bytes")
    return fig


def _duplicates(ctx, d: dict) -> str:
    out = (f"<p>Exact duplicates: {d['files']:,} files ({100 * d['share_files']:.1f}% of files, "
           f"{100 * d['share_bytes']:.1f}% of bytes) in {d['groups_with_copies']:,} groups with copies; "
           f"{d['distinct_contents']:,} distinct contents.</p>")
    if d["largest_groups"]:
        out += "<h3>Largest duplicate groups</h3>" + ctx.table(
            [{"files": g["files"], "representative": f"{g['repo_name']}/{g['path']}", "bytes": g["bytes"],
              "kept": "yes" if g["kept"] else "no"} for g in d["largest_groups"]])
    return out


def _licenses(ctx, lic: dict) -> str:
    names = sorted(set(lic["before"]) | set(lic["after"]), key=lambda k: (-lic["before"].get(k, 0), k))
    return "<h3>Licences before and after</h3>" + ctx.table(
        [{"license": k, "files before": f"{lic['before'].get(k, 0):,}", "files after": f"{lic['after'].get(k, 0):,}"}
         for k in names])


def _secrets(s: dict) -> str:
    found = ", ".join(f"{k}: {v:,}" for k, v in s["files_by_kind"].items() if v) or "none"
    return (f"<p>Secrets ({html.escape(s['mode'])}): files by kind: {html.escape(found)}; "
            f"{s['redacted_files']:,} files redacted, {s['secret_redactions']:,} secret and "
            f"{s['email_redactions']:,} e-mail literals replaced.</p>")


def _opt_out(o: dict | None, dropped: int) -> str:
    if not o or not o.get("file"):
        return ""
    return (f"<p>Opt-out list {html.escape(o['file'])} (sha256 {o['sha256'][:12]}…, {o['lines']:,} lines: "
            f"{o['repos']:,} repositories, {o['globs']:,} path globs): {dropped:,} files dropped.</p>")


def _decontamination(dc: dict, dropped: int) -> str:
    if not dc.get("benchmarks"):
        return ""
    parts = []
    if "strings" in dc:
        parts.append(f"{dc['strings']:,} exact strings (whitespace-normalised; {dc['skipped_short']} shorter "
                     f"than {dc['min_chars']} characters ignored)")
    ng = dc.get("ngram")
    if ng:
        parts.append(f"{ng['items']:,} items as token {ng['n']}-grams (a file holding {ng['overlap']:.0%} of an "
                     f"item's in one stretch; {ng['skipped_short']} items with fewer than {ng['min_ngrams']} "
                     "n-grams left to exact matching)")
    files = dc.get("files")
    by = (f": {files['exact']:,} found by exact substrings, {files['ngram']:,} by n-grams "
          f"({files['ngram_only']:,} by n-grams only)") if files else ""
    return (f"<p>Decontamination against {html.escape(', '.join(dc['benchmarks']))}: "
            f"{'; '.join(parts)}. {dropped:,} files dropped{by}.</p>")
