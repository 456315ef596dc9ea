"""The `dedup` section of the report."""
from __future__ import annotations


def section(ctx) -> str | None:
    counts = ctx.counts.get("dedup")
    if counts is None:
        return None
    ex = counts.extra
    parts = [f"<p>MinHash LSH: {ex['ngram']}-gram shingles, {ex['num_perm']} permutations, "
             f"threshold {ex['threshold']}, {ex['bands']} bands &times; {ex['rows']} rows "
             f"(false-positive area {ex['estimated_fp_area']:.4f}, false-negative area "
             f"{ex['estimated_fn_area']:.4f}); candidates {'verified by signature' if ex['verify'] else 'not verified'}."
             "</p>"]
    share = lambda part, whole: f"{100 * part / whole:.1f}%" if whole else "-"  # noqa: E731
    parts.append(ctx.table([
        {"figure": "files in", "value": f"{counts.rows_in:,}"},
        {"figure": "files too short to hash (kept)", "value": f"{ex['files_too_short']:,}"},
        {"figure": "clusters", "value": f"{ex['clusters']:,}"},
        {"figure": "files in clusters", "value": f"{ex['files_in_clusters']:,}"},
        {"figure": "files removed", "value": f"{ex['files_removed']:,} ({share(ex['files_removed'], counts.rows_in)})"},
        {"figure": "bytes removed", "value": f"{ex['bytes_removed'] / 1e6:,.1f} MB "
                                            f"({share(ex['bytes_removed'], ex['bytes_in'])})"},
        {"figure": "component rounds", "value": ex["cc_rounds"]},
    ]))
    bins = ex.get("cluster_size_bins") or []
    if bins:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.5, 3.2))
        ax.bar([b["bin"] for b in bins], [b["clusters"] for b in bins], color="#4c72b0")
        ax.set_yscale("log")
        ax.set_xlabel("cluster size (files)")
        ax.set_ylabel("clusters")
        ax.set_title("Near-duplicate cluster sizes")
        parts.append(ctx.savefig(fig, "dedup_cluster_sizes"))
        parts.append(ctx.table(bins))
    return "".join(parts)
