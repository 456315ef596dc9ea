"""Every dataset card of a run, and the tokenizer's.

- `local_dataset_card`: the split stage's `dataset/README.md`, next to the Parquet files, so that
  `datasets.load_dataset(<dataset folder>)` finds both splits;
- `hub_dataset_card` and `tokenizer_card`: the README.md of the Hub repos a publish pushes; the
  Hub dataset card supersedes the local one (same facts, Hub paths, and the run's funnel).

Pure text rendering from facts handed in (stage markers, Parquet footers, the config): nothing
here reads files or talks to the network. The YAML `configs` of a dataset card name the splits'
Parquet files, so `load_dataset(repo, split=..., streaming=True)` finds them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codecorpus.core.config import Config
from codecorpus.core.stage import Counts

DATA_STAGES = ("ingest", "clean", "dedup", "split")
CLEAN_SETTINGS = ("line_max", "line_mean", "alpha_frac", "config_or_test_prob", "no_keywords_prob",
                  "min_assignments", "min_token_ratio", "token_ratio_tokenizer", "licenses_allow",
                  "licenses_deny", "keep_unknown_license", "secrets", "emails", "decontaminate", "seed")
DEDUP_SETTINGS = ("preset", "ngram", "min_tokens", "num_perm", "threshold", "bands", "rows", "verify", "seed")
# Training settings worth stating on the tokenizer card (timings and local paths are not).
TOKENIZER_SETTINGS = ("base", "vocab_size_requested", "n_examples", "min_frequency", "max_chars_per_file", "seed")
SPLIT_SETTINGS = ("by", "valid_fraction", "seed", "tolerance", "leakage")


@dataclass(frozen=True)
class SplitFacts:
    name: str  # "train" | "valid": the folder under dataset/ and the split name on the Hub
    rows: int
    files: int
    bytes: int
    licenses: dict[str, int] | None = None  # None: the Parquet files have no license column
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunFacts:
    """What the cards say about the run, gathered once for every repo of the publish."""
    cfg: Config
    splits: tuple[SplitFacts, ...]
    counts: dict[str, Counts] = field(default_factory=dict)  # completed stages' markers


def hub_dataset_card(facts: RunFacts, repo_id: str, split_repos: dict[str, str]) -> str:
    """The README.md of a dataset repo. `split_repos` maps every split to the repo that holds it:
    one repo for both, or `<name>-train` / `<name>-valid`; this card's YAML lists its own splits.
    It supersedes the split stage's local dataset/README.md (which it covers, with Hub paths)."""
    own = [s for s in facts.splits if split_repos[s.name] == repo_id]
    total_rows = sum(s.rows for s in own)
    meta = {
        "pretty_name": repo_id.split("/", 1)[1],
        "license": "other",
        "license_name": "mixed-github-licenses",
        "language": ["code"],
        "task_categories": ["text-generation"],
        "tags": ["code", "python", "codecorpus"],
        "size_categories": [_size_category(total_rows)],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": s.name, "path": f"{s.name}/*.parquet"} for s in own]}],
    }
    parts = [
        _front_matter(meta),
        f"# {meta['pretty_name']}\n",
        "Python source files from a CodeParrot-style GitHub dump, "
        + "".join(f"{verb}, " for stage, verb in (("clean", "cleaned"), ("dedup", "near-deduplicated"))
                  if stage in facts.counts)
        + "split into train and validation sets by codecorpus (a PySpark pipeline following chapter 10 "
        "of *Natural Language Processing with Transformers*). One row per file; every decision is "
        "deterministic for a given input and configuration.\n",
        _how_to_load(facts, split_repos),
        _splits_section(facts, split_repos),
        _sources_section(facts),
        _licences_section(facts),
        _funnel_section(facts),
        _filters_section(facts),
        _dedup_section(facts),
        _split_settings_section(facts),
    ]
    return "\n".join(p for p in parts if p)


def local_dataset_card(counts: dict, cfg: Config, files: dict[str, list[str]], columns: list[str],
                       share: dict | None = None, leakage: dict | None = None, opt_out: dict | None = None) -> str:
    """The split stage's README.md, whose YAML `configs:` lets `datasets.load_dataset(<dir>)` find
    both splits. `counts` holds each split's files, bytes and repos; `columns` the dataset's;
    `share` and `leakage` the split marker's facts of the same names (requested and achieved
    validation share; train/valid duplicate pairs), stated when given.

    The files are listed by name rather than by a glob: `datasets` keys its cache on the folder
    name and these strings, so a glob would serve a stale cached copy of an older run with the
    same folder name; Spark's file names carry a per-write id, so listing them keys each run."""
    listed = {s: "\n".join(f"    - {s}/{f}" for f in names) for s, names in files.items()}
    total = sum(counts[s]["files"] for s in ("train", "valid")) or 1
    rows = "\n".join(f"| {s} | {counts[s]['files']:,} | {counts[s]['bytes'] / 1e6:,.1f} | {counts[s]['repos']:,} "
                     f"| {100 * counts[s]['files'] / total:.1f}% |" for s in ("train", "valid"))
    return f"""---
configs:
- config_name: default
  data_files:
  - split: train
    path:
{listed["train"]}
  - split: valid
    path:
{listed["valid"]}
task_categories:
- text-generation
tags:
- code
- python
---
# codecorpus dataset

Python source files prepared by codecorpus from `{cfg.input}`: ingested, cleaned, deduplicated
and split **by {cfg.split.by}** (seed {cfg.split.seed}, valid fraction {cfg.split.valid_fraction}).

| split | files | MB | repositories | share of files |
|---|---:|---:|---:|---:|
{rows}
{_local_share(share)}{_local_leakage(leakage)}{_opt_out_sentence(opt_out) if opt_out is not None else ""}
Columns: `{'`, `'.join(columns)}` (`id` is a stable 64-bit id of the source shard and line).

```python
from datasets import load_dataset
ds = load_dataset("path/to/dataset")                          # memory-mapped Arrow
stream = load_dataset("path/to/dataset", streaming=True)      # iterable, nothing cached
```
"""


def _local_share(share: dict | None) -> str:
    """The requested and the achieved validation share, as a sentence."""
    if not share:
        return ""
    achieved = f"{100 * share['achieved']:.2f}%"
    if share.get("requested") is None:
        return f"\nValidation is the last shard: {achieved} of the files.\n"
    lo, hi = (f"{100 * b:.2f}%" for b in share["band"])
    text = (f"\nValidation holds **{achieved}** of the files ({share['valid_files']:,} of {share['files']:,}); "
            f"requested {100 * share['requested']:.2f}% +- {100 * share['tolerance']:.0f}% ({lo} to {hi}): ")
    if share["within_tolerance"]:
        return text + "within.\n"
    if share.get("rule") == "share":
        return text + ("**not reached**: too few files lie in repositories small enough to move "
                       f"(at most {share['movable_max_files']:,} files each); this is the nearest the "
                       "split's rule gets.\n")
    return text + "**not reached** (a hash split of few files).\n"


def _local_leakage(leakage: dict | None) -> str:
    """Train/valid duplicate pairs: how they were looked for, how many, and the first few."""
    if not leakage:
        return ""
    text = (f"\nTrain/valid duplicates (exact, or Jaccard >= {leakage['threshold']} over {leakage['ngram']}-gram "
            f"shingles, files of {leakage['min_tokens']}+ tokens): **{leakage['pairs']:,}** file pairs "
            f"(split.leakage = {leakage['mode']}).")
    if leakage.get("groups"):
        text += (f" {leakage['linked_nodes']:,} linked {'repositories' if leakage.get('by') == 'repo' else 'files'}"
                 f" were kept together in {leakage['groups']:,} groups.")
    for p in leakage.get("listed", [])[:5]:
        text += (f"\n- {p['kind']}, Jaccard {p['jaccard']}: train `{p['train']['repo_name']}/{p['train']['path']}`"
                 f" / valid `{p['valid']['repo_name']}/{p['valid']['path']}`")
    return text + "\n"


def tokenizer_card(repo_id: str, tokenizer: dict[str, Any], dataset_repo: str,
                   counts: Counts | None, endpoint: str = "https://huggingface.co") -> str:
    """The README.md of the tokenizer's model repo. `tokenizer` holds facts read from tokenizer.json."""
    meta: dict[str, Any] = {"library_name": "transformers", "tags": ["tokenizer", "code", "codecorpus"],
                            "language": ["code"]}
    if dataset_repo:
        meta["datasets"] = [dataset_repo]
    lines = [_front_matter(meta), f"# {repo_id.split('/', 1)[1]}\n",
             "A tokenizer for Python code trained by codecorpus on the train split of "
             + (f"[{dataset_repo}]({endpoint}/datasets/{dataset_repo})" if dataset_repo
                else "its corpus") + ".\n", "## How to load\n",
             "```python\nfrom transformers import AutoTokenizer\n\n"
             f"tokenizer = AutoTokenizer.from_pretrained({repo_id!r})\n"
             "print(tokenizer(\"def say_hello():\\n    print('Hello, World!')\").tokens())\n```\n",
             "## Facts\n"]
    rows = [("model", tokenizer.get("model", "unknown")),
            ("vocabulary size", _num(tokenizer.get("vocab_size"))),
            ("added / special tokens", ", ".join(f"`{t}`" for t in tokenizer.get("added_tokens", [])) or "none")]
    if counts is not None:
        rows += [(f"training `{k}`", _value(counts.extra[k])) for k in TOKENIZER_SETTINGS
                 if _is_setting(counts.extra.get(k))]
    lines.append(_table(["", "value"], rows))
    return "\n".join(lines)


# --- sections -----------------------------------------------------------------------------

def _how_to_load(facts: RunFacts, split_repos: dict[str, str]) -> str:
    code = ["from datasets import load_dataset", ""]
    for s in facts.splits:
        code.append(f"{s.name} = load_dataset({split_repos[s.name]!r}, split={s.name!r}, streaming=True)")
    first = facts.splits[0].name if facts.splits else "train"
    code += ["", f"row = next(iter({first}))", "print(row[\"repo_name\"], row[\"path\"])",
             "print(row[\"content\"][:200])"]
    return ("## How to load\n\n`streaming=True` reads the Parquet files as you iterate, without "
            "downloading the whole split first; drop it to download and memory-map the split.\n\n"
            "```python\n" + "\n".join(code) + "\n```\n")


def _splits_section(facts: RunFacts, split_repos: dict[str, str]) -> str:
    split = facts.counts.get("split")
    recorded = split.extra.get("splits") if split is not None else None
    repos = {s.name: recorded.get(s.name, {}).get("repos") if isinstance(recorded, dict) else None
             for s in facts.splits}
    rows = [(s.name, _num(s.rows), _num(repos[s.name]), _num(s.files), _bytes(s.bytes), split_repos[s.name])
            for s in facts.splits]
    rows.append(("total", _num(sum(s.rows for s in facts.splits)), "", _num(sum(s.files for s in facts.splits)),
                 _bytes(sum(s.bytes for s in facts.splits)), ""))
    header = ["split", "rows (files)", "source repositories", "Parquet files", "size on disk", "repo"]
    return "## Splits\n\n" + _table(header, rows)


def _sources_section(facts: RunFacts) -> str:
    ingest = facts.counts.get("ingest")
    lines = ["## Sources\n",
             f"- Input: gzipped JSON-lines shards of GitHub source files (fields `repo_name`, `path`, "
             f"`copies`, `size`, `content`, `license`), read from `{facts.cfg.input}`."]
    if ingest is not None:
        shards = next((ingest.extra[k] for k in ("shards", "n_shards", "shard_count")
                       if isinstance(ingest.extra.get(k), int)), None)
        lines.append(f"- Records read: {_num(ingest.rows_in)}" + (f" from {_num(shards)} shards" if shards else "")
                     + f"; {_num(ingest.rows_out)} parsed into rows, {_num(ingest.quarantined)} quarantined"
                     + (f", dropped: {_reasons(ingest.dropped)}" if ingest.dropped else "") + ".")
    else:
        lines.append("- Records read: not recorded (no ingest marker in the run).")
    columns = next((s.columns for s in facts.splits if s.columns), ())
    if columns:
        lines.append("- Columns: " + ", ".join(f"`{c}`" for c in columns) + "."
                     + (" `id` is a stable 64-bit id of the source shard and line." if "id" in columns else ""))
    return "\n".join(lines) + "\n"


def _licences_section(facts: RunFacts) -> str:
    if not facts.splits or any(s.licenses is None for s in facts.splits):
        return "## Licences\n\nNot recorded: the published files have no `license` column.\n"
    names = sorted({k for s in facts.splits for k in s.licenses},
                   key=lambda k: (-sum(s.licenses.get(k, 0) for s in facts.splits), k))
    total = sum(s.rows for s in facts.splits) or 1
    rows = []
    for name in names:
        per = [s.licenses.get(name, 0) for s in facts.splits]
        rows.append((f"`{name}`", *[_num(n) for n in per], _num(sum(per)), f"{100 * sum(per) / total:.1f}%"))
    header = ["licence", *[s.name for s in facts.splits], "total", "share"]
    return ("## Licences\n\nThe repository licence of every file, as given by the source dump. Each file "
            "keeps its own licence; check it before reuse.\n\n" + _table(header, rows))


def _funnel_section(facts: RunFacts) -> str:
    rows = []
    for stage in DATA_STAGES:
        c = facts.counts.get(stage)
        if c is None:
            rows.append((stage, "-", "-", "-", "-", _absent(facts.cfg, stage)))
        else:
            rows.append((stage, _num(c.rows_in), _num(c.rows_out), _num(sum(c.dropped.values())),
                         _num(c.quarantined), ""))
    return "## Processing funnel\n\n" + _table(["stage", "rows in", "rows out", "dropped", "quarantined", "note"], rows)


def _filters_section(facts: RunFacts) -> str:
    rows = []
    for stage in DATA_STAGES:
        c = facts.counts.get(stage)
        if c is None:
            continue
        for reason, n in sorted(c.dropped.items(), key=lambda kv: (-kv[1], kv[0])):
            share = f"{100 * n / c.rows_in:.2f}%" if c.rows_in else "-"
            rows.append((stage, f"`{reason}`", _num(n), share))
        if c.quarantined:
            rows.append((stage, "quarantined", _num(c.quarantined), f"{100 * c.quarantined / c.rows_in:.2f}%"))
    text = "## Filters applied\n\nRows removed by each filter (a file is counted under the first filter it fails).\n\n"
    text += _table(["stage", "reason", "rows", "share of stage input"], rows) if rows else "No rows were removed.\n"
    if "clean" in facts.counts:
        text += _opt_out_sentence(facts.counts["clean"].extra.get("opt_out"))
        text += "\nCleaning settings:\n\n" + _settings_list(_settings(facts, "clean", CLEAN_SETTINGS))
    return text


def _opt_out_sentence(opt_out: dict | None) -> str:
    """Which opt-out list the run honoured, by content (its SHA-256), not by path."""
    if not opt_out or not opt_out.get("file"):
        return "\nNo opt-out list was applied (clean.opt_out_file is empty).\n"
    return (f"\nOpt-out list honoured: SHA-256 `{opt_out['sha256']}`, {opt_out['lines']:,} entries "
            f"({opt_out['repos']:,} repositories, {opt_out['globs']:,} path globs); its files drop as `opt_out`.\n")


def _dedup_section(facts: RunFacts) -> str:
    head = "## Deduplication\n\n"
    if "dedup" not in facts.counts:
        return head + _absent(facts.cfg, "dedup").capitalize() + ": no near-duplicate removal is recorded.\n"
    c = facts.counts["dedup"]
    text = head + (f"MinHash LSH near-deduplication over token shingles; {_num(sum(c.dropped.values()))} of "
                   f"{_num(c.rows_in)} files removed, one file kept per duplicate cluster.\n\nSettings "
                   "(`bands`/`rows` 0 means chosen from the threshold):\n\n")
    return text + _settings_list(_settings(facts, "dedup", DEDUP_SETTINGS))


def _split_settings_section(facts: RunFacts) -> str:
    if "split" not in facts.counts:
        return "## Split\n\nNot recorded (no split marker in the run).\n"
    extra = facts.counts["split"].extra
    return ("## Split\n\nA deterministic split (same input, config and seed give the same split):\n\n"
            + _settings_list(_settings(facts, "split", SPLIT_SETTINGS))
            + _local_share(extra.get("share")) + _local_leakage(extra.get("leakage")))


# --- helpers ------------------------------------------------------------------------------

def _settings(facts: RunFacts, stage: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """A stage's settings as its marker recorded them (extra["config"] or extra["settings"], or
    top-level extra keys); else the config used for publishing, which should be the run's."""
    extra = facts.counts[stage].extra if stage in facts.counts else {}
    recorded = extra.get("config") or extra.get("settings") or {}
    section = getattr(facts.cfg, stage)
    out = {}
    for key in keys:
        found = [s[key] for s in (recorded, extra) if isinstance(s, dict) and _is_setting(s.get(key))]
        if found:
            out[key] = found[0]
        elif hasattr(section, key):
            out[key] = getattr(section, key)
    return out


def _is_setting(value: Any) -> bool:
    """A scalar or a list of strings; histograms and nested figures are not settings."""
    if isinstance(value, list):
        return all(isinstance(v, str) for v in value)
    return isinstance(value, (str, int, float, bool))


def _settings_list(settings: dict[str, Any]) -> str:
    return "".join(f"- `{k}`: {_value(v)}\n" for k, v in settings.items())


def _absent(cfg: Config, stage: str) -> str:
    section = getattr(cfg, stage, None)
    if section is not None and getattr(section, "enabled", True) is False:
        return f"turned off ({stage}.enabled = false)"
    return "not run"


def _reasons(dropped: dict[str, int]) -> str:
    return ", ".join(f"{k} {_num(v)}" for k, v in sorted(dropped.items()))


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ", ".join(f"`{x}`" for x in v) if v else "(none)"
    if v == "":
        return "(none)"
    return f"`{v}`" if isinstance(v, str) else str(v)


def _num(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else ("-" if n is None else str(n))


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def _table(header: list[str], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _size_category(rows: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    return next((label for bound, label in bounds if rows < bound), "1B<n<10B")


def _front_matter(meta: dict[str, Any]) -> str:
    import yaml  # a huggingface_hub dependency

    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"
