"""Publish a finished run to the Hugging Face Hub: the dataset splits with a card, and the tokenizer.

Not a pipeline stage: `jobs/publish.py` runs it on purpose. It reads the run root's files (no
Spark): `dataset/{train,valid}/*.parquet`, `tokenizer/` and the stage markers. `plan_publish`
lists every file each repo gets; `--dry-run` prints that plan and touches no network. A real run
checks the token and the Hub first (one quick request), then for each repo builds a staging
folder in a temporary directory (symlinks to the run's files plus the generated card), creates
the repo and uploads with `HfApi.upload_folder` (resumable: re-running skips committed files),
and removes the staging folder whatever happens.

The token comes from HF_TOKEN or the cached `hf auth login` (`huggingface_hub.get_token`). It is
only handed to huggingface_hub: never printed, logged or written, and scrubbed from error text.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from codecorpus.publish import cards as publish_card
from codecorpus.core.config import Config
from codecorpus.core.errors import UserError
from codecorpus.core.stage import Counts, load_counts
from codecorpus.io import fs

log = logging.getLogger("codecorpus")

DATASET_DIR = "dataset"
TOKENIZER_DIR = "tokenizer"
SPLITS = ("train", "valid")
RECEIPT = "_published.json"  # written under the run root only after every repo is pushed


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


# --- planning (local files only) ------------------------------------------------------------

def plan_publish(cfg: Config) -> PublishPlan:
    """Every repo and file a publish would push; raises UserError when an input is missing."""
    pub = cfg.publish
    if not pub.dataset_repo and not pub.tokenizer_repo:
        raise UserError("nothing to publish: set publish.dataset_repo and/or publish.tokenizer_repo "
                        "(e.g. --set publish.dataset_repo=you/codeparrot)")
    root = fs.local_path(cfg.output).rstrip("/") or "/"
    repos: list[RepoPlan] = []
    if pub.dataset_repo:
        repos += _dataset_plans(cfg, root)
    if pub.tokenizer_repo:
        repos.append(_tokenizer_plan(cfg, root))
    return PublishPlan(root=root, endpoint=_endpoint(cfg), revision=pub.revision, private=pub.private,
                       commit_message=pub.commit_message, repos=tuple(repos))


def split_repo_ids(cfg: Config) -> dict[str, str]:
    """Split name -> the dataset repo that holds it: one repo, or `<name>-train` / `<name>-valid`."""
    name = cfg.publish.dataset_repo
    return {s: f"{name}-{s}" if cfg.publish.split_repos else name for s in SPLITS}


def _dataset_plans(cfg: Config, root: str) -> list[RepoPlan]:
    dataset = Path(root) / DATASET_DIR
    if not (dataset / "_SUCCESS").is_file():
        raise UserError(f"no finished split output at {dataset}: run the split stage first "
                        "(./spark-submit.sh jobs/split.py)")
    files = {s: _parquet_files(dataset / s) for s in SPLITS}
    for split, found in files.items():
        if not found:
            raise UserError(f"no Parquet files in {dataset / split}: the split output is incomplete")
    facts = publish_card.RunFacts(cfg=cfg, splits=tuple(_split_facts(s, files[s]) for s in SPLITS),
                                  counts=_markers(root))
    owners = split_repo_ids(cfg)
    plans = []
    for repo_id in dict.fromkeys(owners.values()):  # one or two repos, in split order
        card = publish_card.dataset_card(facts, repo_id, owners)
        uploads = [_text_file("README.md", card)]
        for split in (s for s in SPLITS if owners[s] == repo_id):
            uploads += [UploadFile(f"{split}/{p.name}", p.stat().st_size, source=str(p)) for p in files[split]]
        plans.append(RepoPlan(repo_id, "dataset", tuple(uploads)))
    return plans


def _tokenizer_plan(cfg: Config, root: str) -> RepoPlan:
    folder = Path(root) / TOKENIZER_DIR
    if not (folder / "_SUCCESS").is_file():
        raise UserError(f"no finished tokenizer at {folder}: run the tokenizer stage first "
                        "(./spark-submit.sh jobs/train_tokenizer.py)")
    uploads = [UploadFile(p.relative_to(folder).as_posix(), p.stat().st_size, source=str(p))
               for p in sorted(folder.rglob("*")) if p.is_file() and _shippable(p.relative_to(folder))]
    if not any(u.path_in_repo in ("tokenizer.json", "vocab.json", "tokenizer.model") for u in uploads):
        raise UserError(f"{folder} holds no tokenizer.json, vocab.json or tokenizer.model")
    if not any(u.path_in_repo == "README.md" for u in uploads):
        card = publish_card.tokenizer_card(cfg.publish.tokenizer_repo, _tokenizer_facts(folder),
                                           cfg.publish.dataset_repo, _tokenizer_marker(root), _endpoint(cfg))
        uploads.insert(0, _text_file("README.md", card))
    return RepoPlan(cfg.publish.tokenizer_repo, "model", tuple(uploads))


def _shippable(rel: Path) -> bool:
    """Skip Hadoop/Spark bookkeeping (_SUCCESS, .crc) and hidden files."""
    return not any(part.startswith(("_", ".")) for part in rel.parts) and rel.suffix != ".crc"


def _parquet_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".parquet"
                  and _shippable(Path(p.name)))


def _split_facts(name: str, files: list[Path]) -> publish_card.SplitFacts:
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
    return publish_card.SplitFacts(name=name, rows=rows, files=len(files), bytes=sum(p.stat().st_size for p in files),
                                   licenses=licenses if has_license else None, columns=columns)


def _markers(root: str) -> dict[str, Counts]:
    found = {}
    for stage in publish_card.DATA_STAGES:
        counts = load_counts(root, stage)
        if counts is not None:
            found[stage] = counts
    return found


def _tokenizer_marker(root: str) -> Counts | None:
    for stage in ("train_tokenizer", "tokenizer"):
        counts = load_counts(root, stage)
        if counts is not None:
            return counts
    return None


def _tokenizer_facts(folder: Path) -> dict:
    path = folder / "tokenizer.json"
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


def _text_file(path_in_repo: str, text: str) -> UploadFile:
    return UploadFile(path_in_repo, len(text.encode()), text=text)


def _endpoint(cfg: Config) -> str:
    if cfg.publish.endpoint:
        return cfg.publish.endpoint.rstrip("/")
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


# --- the plan as text -----------------------------------------------------------------------

def render_plan(plan: PublishPlan, token_note: str) -> str:
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


def token_note() -> str:
    """Where a token would come from, without reading it over the network or showing it."""
    from huggingface_hub import constants

    if os.environ.get("HF_TOKEN"):
        return "found in HF_TOKEN"
    if Path(constants.HF_TOKEN_PATH).is_file():
        return "found in the cached login"
    return "none found (a real run needs HF_TOKEN or `hf auth login`)"


# --- pushing --------------------------------------------------------------------------------

def resolve_token() -> str:
    from huggingface_hub import get_token

    try:
        token = get_token()
    except Exception as exc:  # e.g. an OIDC exchange that failed
        raise UserError(f"could not get a Hugging Face token: {type(exc).__name__}") from None
    if not token:
        raise UserError("no Hugging Face token: set HF_TOKEN or run `hf auth login`; nothing was uploaded")
    return token


def check_hub(endpoint: str, token: str, timeout_s: float) -> None:
    """One request with a short timeout (the token check), so a machine without network fails
    in seconds with one line instead of retrying inside the upload."""
    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers, get_session

    if getattr(constants, "HF_HUB_OFFLINE", False):
        raise UserError("HF_HUB_OFFLINE is set: unset it to publish; nothing was uploaded")
    try:
        response = get_session().get(f"{endpoint}/api/whoami-v2", headers=build_hf_headers(token=token),
                                     timeout=timeout_s)
    except Exception as exc:
        raise UserError(f"cannot reach the Hugging Face Hub at {endpoint} ({describe(exc, token)}); "
                        "nothing was uploaded") from None
    if response.status_code == 401:
        raise UserError("the Hub rejected the token (HTTP 401): check HF_TOKEN or `hf auth login`; "
                        "nothing was uploaded")
    if response.status_code >= 400:
        raise UserError(f"the Hub at {endpoint} answered HTTP {response.status_code} to the token check; "
                        "nothing was uploaded")


def push(plan: PublishPlan, token: str) -> list[dict]:
    """Create each repo (and branch) and upload its files; returns one receipt per repo."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=plan.endpoint, token=token)
    receipts = []
    for repo in plan.repos:
        log.info("publishing %d files (%s bytes) to %s %s", len(repo.files), f"{repo.bytes:,}",
                 repo.repo_type, repo.repo_id)
        staging = tempfile.mkdtemp(prefix="codecorpus-publish-")
        try:
            stage_files(repo, staging)
            api.create_repo(repo.repo_id, repo_type=repo.repo_type, private=plan.private, exist_ok=True)
            if plan.revision != "main":
                api.create_branch(repo.repo_id, branch=plan.revision, repo_type=repo.repo_type, exist_ok=True)
            commit = api.upload_folder(repo_id=repo.repo_id, folder_path=staging, repo_type=repo.repo_type,
                                       revision=plan.revision, commit_message=plan.commit_message)
        except UserError:
            raise
        except Exception as exc:
            raise UserError(f"publishing {repo.repo_type} {repo.repo_id} failed ({describe(exc, token)}); "
                            "re-run to resume: files already committed are skipped") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        receipts.append({"repo_id": repo.repo_id, "repo_type": repo.repo_type, "url": plan.url(repo),
                         "revision": plan.revision, "commit_url": getattr(commit, "commit_url", None),
                         "files": len(repo.files), "bytes": repo.bytes})
        log.info("published %s", plan.url(repo))
    return receipts


def stage_files(repo: RepoPlan, folder: str) -> None:
    """The repo's tree in `folder`: symlinks to the run's files (no copies) and the generated cards."""
    for f in repo.files:
        dest = Path(folder) / f.path_in_repo
        dest.parent.mkdir(parents=True, exist_ok=True)
        if f.source is not None:
            os.symlink(os.path.abspath(f.source), dest)
        else:
            dest.write_text(f.text or "", encoding="utf-8")


def describe(exc: BaseException, token: str | None) -> str:
    """An exception as one short line with any token scrubbed out (servers may echo headers)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    if token:
        text = text.replace(token, "***")
    text = re.sub(r"hf_[A-Za-z0-9]{8,}", "hf_***", text)
    text = re.sub(r"(?i)(bearer\s+)\S+", r"\1***", text)
    return text[:300] + ("..." if len(text) > 300 else "")


def publish(cfg: Config, dry_run: bool = False, show_cards: bool = False) -> str:
    """Plan, then describe (dry run) or push. Returns what the job prints on stdout."""
    plan = plan_publish(cfg)
    if dry_run:
        cards = [f"===== {f.path_in_repo} of {repo.repo_id} =====\n{f.text}" for repo in plan.repos
                 for f in repo.files if show_cards and f.text is not None]
        return "\n".join(cards + [render_plan(plan, token_note())])
    token = resolve_token()
    check_hub(plan.endpoint, token, cfg.publish.timeout_s)
    receipts = push(plan, token)
    fs.write_json_atomic(f"{plan.root}/{RECEIPT}", {"repos": receipts})
    return "\n".join(f"published {r['repo_type']} {r['repo_id']}: {r['url']}" for r in receipts)
