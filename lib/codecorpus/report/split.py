"""The `split` section of the report: the sides, the requested and achieved validation share,
and the train/valid duplicate audit."""
from __future__ import annotations

import html


def section(ctx) -> str | None:
    c = ctx.counts.get("split")
    if c is None:
        return None
    sp = c.extra["splits"]
    total = sum(v["files"] for v in sp.values()) or 1
    rows = [{"split": s, "files": f"{v['files']:,}", "share of files": f"{100 * v['files'] / total:.2f}%",
             "MB": f"{v['bytes'] / 1e6:,.1f}", "repositories": v["repos"]} for s, v in sp.items()]
    return (f"<p>Split by <b>{html.escape(c.extra['by'])}</b>; repositories in both splits: "
            f"{c.extra['repos_in_both_splits']}.</p>" + ctx.table(rows)
            + _share(c.extra.get("share")) + _leakage(ctx, c.extra.get("leakage")))


def _share(share: dict | None) -> str:
    """Requested against achieved (markers written before the share rule have none)."""
    if not share:
        return ""
    achieved = f"{100 * share['achieved']:.2f}%"
    if share.get("requested") is None:
        return f"<p>Validation is the last shard: {achieved} of the files.</p>"
    lo, hi = (f"{100 * b:.2f}%" for b in share["band"])
    verdict = "within the band" if share["within_tolerance"] else "<b>outside the band</b>"
    text = (f"<p>Validation share of files: requested {100 * share['requested']:.2f}% "
            f"&plusmn; {100 * share['tolerance']:.0f}% ({lo} to {hi}), achieved <b>{achieved}</b> "
            f"({share['valid_files']:,} of {share['files']:,} files): {verdict}.")
    if share.get("rule") == "share":
        text += (f" Repositories (or groups kept together) of at most {share['movable_max_files']:,} files "
                 f"may move to validation: {share['movable_units']:,} of {share['units']:,}.")
        if not share["within_tolerance"]:
            text += " Too few files lie in them; this is the nearest the rule gets."
    return text + "</p>"


def _leakage(ctx, leak: dict | None) -> str:
    if not leak:
        return ""
    text = (f"<p>Train/valid duplicates (split.leakage = <b>{html.escape(leak['mode'])}</b>): exact "
            f"duplicates, and near-duplicates found by MinHash LSH ({leak['bands']} bands &times; {leak['rows']} "
            f"rows) and verified by exact Jaccard &ge; {leak['threshold']} over {leak['ngram']}-gram shingles, "
            f"among {leak['files_checked']:,} files of {leak['min_tokens']}+ tokens: "
            f"<b>{leak['pairs']:,}</b> file pairs ({leak['exact_pairs']:,} exact, {leak['near_pairs']:,} near).")
    if leak.get("groups"):
        what = "repositories" if leak.get("by") == "repo" else "files"
        text += f" {leak['linked_nodes']:,} linked {what} were kept together, in {leak['groups']:,} groups."
    text += "</p>"
    listed = [{"kind": p["kind"], "Jaccard": p["jaccard"], "file pairs": p["file_pairs"],
               "train": f"{p['train']['repo_name']}/{p['train']['path']} ({p['train']['id']})",
               "valid": f"{p['valid']['repo_name']}/{p['valid']['path']} ({p['valid']['id']})"}
              for p in leak.get("listed", [])]
    return text + (ctx.table(listed) if listed else "")
