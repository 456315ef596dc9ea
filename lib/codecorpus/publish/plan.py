"""What a publish pushes where: every repo, every file in it, and the generated cards; and the
dry-run listing of it. Local files only: no network, no token.

A run's files are found by their `io.layout` names (`dataset.train`, `tokenizer`, ...), its
stage markers through `core.stage.load_counts`. The dataset repo gets the split's Parquet files
plus a Hub card; with `publish.split_repos` each split gets its own repo. The tokenizer's model
repo gets the tokenizer folder's files, plus a card unless the folder has a README.md.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from codecorpus.core.config import Config
from codecorpus.core.errors import UserError
from codecorpus.core.stage import Counts, load_counts
from codecorpus.io import fs
from codecorpus.io.layout import SPLITS, RunLayout, split_location
from codecorpus.publish import cards

TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model")  # any one makes a loadable tokenizer
TOKENIZER_STAGES = ("train_tokenizer", "tokenizer")  # the stage's name now, and before it was renamed


@dataclass(frozen=True)
class UploadFile:
    path_in_repo: str
    size: int
    source: str | None = None  # a file under the run root, or None for generated text
    text: str | None = None  # generated content (a card)


@dataclass(frozen=True)
class RepoPlan:
    repo_id: str
    repo_type: str  # "dataset" | "model"
    files: tuple[UploadFile, ...]

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class PublishPlan:
    root: str
    endpoint: str
    revision: str
    private: bool
    commit_message: str
    repos: tuple[RepoPlan, ...]

    def url(self, repo: RepoPlan) -> str:
        base = f"{self.endpoint}/datasets/{repo.repo_id}" if repo.repo_type == "dataset" \
            else f"{self.endpoint}/{repo.repo_id}"
        return base if self.revision == "main" else f"{base}/tree/{self.revision}"


def plan_publish(cfg: Config) -> PublishPlan:
    """Every repo and file a publish would push; raises UserError when an input is missing."""
    pub = cfg.publish
    if not pub.dataset_repo and not pub.tokenizer_repo:
        raise UserError("nothing to publish: set publish.dataset_repo and/or publish.tokenizer_repo "
                        "(e.g. --set publish.dataset_repo=you/codeparrot)")
    if not fs.is_local(cfg.output):  # huggingface_hub uploads local files only
        raise UserError(f"publish reads the run from local disk; {cfg.output} is not local: copy the run's "
                        "dataset/ and tokenizer/ (and _stages/) to a local folder and name that as output")
    run = RunLayout(fs.local_path(cfg.output))
    repos: list[RepoPlan] = []
    if pub.dataset_repo:
        repos += _dataset_plans(cfg, run)
    if pub.tokenizer_repo:
        repos.append(_tokenizer_plan(cfg, run))
    return PublishPlan(root=run.root, endpoint=_endpoint(cfg), revision=pub.revision, private=pub.private,
                       commit_message=pub.commit_message, repos=tuple(repos))


def split_repo_ids(cfg: Config) -> dict[str, str]:
    """Split name -> the dataset repo that holds it: one repo, or `<name>-train` / `<name>-valid`."""
    name = cfg.publish.dataset_repo
    return {s: f"{name}-{s}" if cfg.publish.split_repos else name for s in SPLITS}


def _endpoint(cfg: Config) -> str:
    if cfg.publish.endpoint:
        return cfg.publish.endpoint.rstrip("/")
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


# --- the dataset ----------------------------------------------------------------------------

def _dataset_plans(cfg: Config, run: RunLayout) -> list[RepoPlan]:
    files = _split_files(run)
    facts = cards.RunFacts(cfg=cfg, splits=tuple(_split_facts(s, files[s]) for s in SPLITS),
                           counts=_markers(run.root, cards.DATA_STAGES))
    owners = split_repo_ids(cfg)
    plans = []
    for repo_id in dict.fromkeys(owners.values()):  # one or two repos, in split order
        uploads = [_text_file("README.md", cards.hub_dataset_card(facts, repo_id, owners))]
        for split in (s for s in SPLITS if owners[s] == repo_id):
            uploads += [UploadFile(f"{split}/{p.name}", p.stat().st_size, source=str(p)) for p in files[split]]
        plans.append(RepoPlan(repo_id, "dataset", tuple(uploads)))
    return plans


def _split_files(run: RunLayout) -> dict[str, list[Path]]:
    """Each split's Parquet files; the split stage must have finished (its `_SUCCESS`)."""
    dataset = run.path("dataset")
    if not Path(dataset, "_SUCCESS").is_file():
        raise UserError(f"no finished split output at {dataset}: run the split stage first "
                        "(./spark-submit.sh jobs/split.py)")
    files = {s: _parquet_files(Path(run.path(split_location("dataset", s)))) for s in SPLITS}
    for split, found in files.items():
        if not found:
            raise UserError(f"no Parquet files in {run.path(split_location('dataset', split))}: "
                            "the split output is incomplete")
    return files


def _split_facts(name: str, files: list[Path]) -> cards.SplitFacts:
    """Row counts from the Parquet footers; the licence column is read alone, batch by batch."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rows, columns, licenses = 0, (), {}
    has_license = True
    for path in files:
        pf = pq.ParquetFile(path)
        rows += pf.metadata.num_rows
        columns = columns or tuple(pf.schema_arrow.names)
        if "license" not in pf.schema_arrow.names:
            has_license = False
            continue
        for batch in pf.iter_batches(columns=["license"], batch_size=65536):
            for item in pc.value_counts(batch.column(0)).to_pylist():
                key = item["values"] if item["values"] is not None else "(none)"
                licenses[key] = licenses.get(key, 0) + item["counts"]
    return cards.SplitFacts(name=name, rows=rows, files=len(files), bytes=sum(p.stat().st_size for p in files),
                            licenses=licenses if has_license else None, columns=columns)


# --- the tokenizer --------------------------------------------------------------------------

def _tokenizer_plan(cfg: Config, run: RunLayout) -> RepoPlan:
    folder = Path(run.path("tokenizer"))
    if not (folder / "_SUCCESS").is_file():
        raise UserError(f"no finished tokenizer at {folder}: run the tokenizer stage first "
                        "(./spark-submit.sh jobs/train_tokenizer.py)")
    uploads = [UploadFile(p.relative_to(folder).as_posix(), p.stat().st_size, source=str(p))
               for p in sorted(folder.rglob("*")) if p.is_file() and _shippable(p.relative_to(folder))]
    if not any(u.path_in_repo in TOKENIZER_FILES for u in uploads):
        raise UserError(f"{folder} holds no {', '.join(TOKENIZER_FILES[:-1])} or {TOKENIZER_FILES[-1]}")
    if not any(u.path_in_repo == "README.md" for u in uploads):
        marker = next(iter(_markers(run.root, TOKENIZER_STAGES).values()), None)
        card = cards.tokenizer_card(cfg.publish.tokenizer_repo, _tokenizer_facts(Path(run.path("tokenizer.json"))),
                                    cfg.publish.dataset_repo, marker, _endpoint(cfg))
        uploads.insert(0, _text_file("README.md", card))
    return RepoPlan(cfg.publish.tokenizer_repo, "model", tuple(uploads))


def _tokenizer_facts(path: Path) -> dict:
    """Model type, vocabulary size and added tokens, from tokenizer.json ({} without one)."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    model = data.get("model") or {}
    vocab = model.get("vocab")  # BPE/WordPiece: {token: id}; Unigram: [[piece, score], ...]
    pieces = set(vocab) if isinstance(vocab, dict) else {p[0] for p in vocab or []}
    added = [t["content"] for t in data.get("added_tokens") or [] if isinstance(t, dict) and "content" in t]
    return {"model": model.get("type", "unknown"),
            "vocab_size": len(pieces | set(added)) if vocab is not None else None,
            "added_tokens": added}


# --- helpers --------------------------------------------------------------------------------

def _shippable(rel: Path) -> bool:
    """Skip Hadoop/Spark bookkeeping (_SUCCESS, .crc) and hidden files."""
    return not any(part.startswith(("_", ".")) for part in rel.parts) and rel.suffix != ".crc"


def _parquet_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".parquet"
                  and _shippable(Path(p.name)))


def _markers(root: str, stages: tuple[str, ...]) -> dict[str, Counts]:
    """The markers of those of `stages` that completed, in the order given."""
    found = {}
    for stage in stages:
        counts = load_counts(root, stage)
        if counts is not None:
            found[stage] = counts
    return found


def _text_file(path_in_repo: str, text: str) -> UploadFile:
    return UploadFile(path_in_repo, len(text.encode()), text=text)


# --- the plan as text -----------------------------------------------------------------------

def render_plan(plan: PublishPlan, token_note: str) -> str:
    """The dry-run listing: each repo, its URL, and every file with its size."""
    lines = [f"dry run: nothing is uploaded; revision {plan.revision!r}, "
             f"commit message {plan.commit_message!r}; token: {token_note}"]
    for repo in plan.repos:
        visibility = "private" if plan.private else "public"
        lines.append(f"{repo.repo_type} repo {repo.repo_id} ({visibility} if created): {plan.url(repo)}")
        width = max(len(f"{f.size:,}") for f in repo.files)
        for f in repo.files:
            note = "  (generated)" if f.source is None else ""
            lines.append(f"  {f.size:>{width},} B  {f.path_in_repo}{note}")
        lines.append(f"  {len(repo.files)} files, {repo.bytes:,} bytes")
    return "\n".join(lines)


def render_cards(plan: PublishPlan) -> list[str]:
    """The generated files of every repo, each under a banner (`--print-card`)."""
    return [f"===== {f.path_in_repo} of {repo.repo_id} =====\n{f.text}" for repo in plan.repos
            for f in repo.files if f.text is not None]
