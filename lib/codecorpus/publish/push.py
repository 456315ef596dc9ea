"""Publish a finished run to the Hugging Face Hub: the network part.

Not a pipeline stage: `jobs/publish.py` runs it on purpose, without Spark. `plan.plan_publish`
decides what goes where; `--dry-run` prints that plan and touches no network. A real run checks
the token and the Hub first (one quick request), then for each repo builds a staging folder in a
temporary directory (symlinks to the run's files plus the generated card), creates the repo and
uploads with `HfApi.upload_folder` (resumable: re-running skips committed files), and removes the
staging folder whatever happens. The receipt is written under the run root only after every
repo is pushed.

The token comes from HF_TOKEN or the cached `hf auth login` (`huggingface_hub.get_token`). It is
only handed to huggingface_hub: never printed, logged or written, and scrubbed from error text.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from codecorpus.core.config import Config
from codecorpus.core.errors import UserError
from codecorpus.io import fs
from codecorpus.io.layout import LOCATIONS, RunLayout
from codecorpus.publish.plan import PublishPlan, RepoPlan, plan_publish, render_cards, render_plan

log = logging.getLogger("codecorpus")

RECEIPT = LOCATIONS["published"]  # under the run root: the repos, URLs and commits of the last publish


def publish(cfg: Config, dry_run: bool = False, show_cards: bool = False) -> str:
    """Plan, then describe (dry run) or push. Returns what the job prints on stdout."""
    plan = plan_publish(cfg)
    if dry_run:
        return "\n".join((render_cards(plan) if show_cards else []) + [render_plan(plan, token_note())])
    token = resolve_token()
    check_hub(plan.endpoint, token, cfg.publish.timeout_s)
    receipts = push(plan, token)
    fs.write_json_atomic(RunLayout(plan.root).path("published"), {"repos": receipts})
    return "\n".join(f"published {r['repo_type']} {r['repo_id']}: {r['url']}" for r in receipts)


# --- the token ------------------------------------------------------------------------------

def token_note() -> str:
    """Where a token would come from, without reading it over the network or showing it."""
    from huggingface_hub import constants

    if os.environ.get("HF_TOKEN"):
        return "found in HF_TOKEN"
    if Path(constants.HF_TOKEN_PATH).is_file():
        return "found in the cached login"
    return "none found (a real run needs HF_TOKEN or `hf auth login`)"


def resolve_token() -> str:
    from huggingface_hub import get_token

    try:
        token = get_token()
    except Exception as exc:  # e.g. an OIDC exchange that failed
        raise UserError(f"could not get a Hugging Face token: {type(exc).__name__}") from None
    if not token:
        raise UserError("no Hugging Face token: set HF_TOKEN or run `hf auth login`; nothing was uploaded")
    return token


def describe(exc: BaseException, token: str | None) -> str:
    """An exception as one short line with any token scrubbed out (servers may echo headers)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    if token:
        text = text.replace(token, "***")
    text = re.sub(r"hf_[A-Za-z0-9]{8,}", "hf_***", text)
    text = re.sub(r"(?i)(bearer\s+)\S+", r"\1***", text)
    return text[:300] + ("..." if len(text) > 300 else "")


# --- the Hub --------------------------------------------------------------------------------

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
        commit = _push_repo(api, plan, repo, token)
        receipts.append({"repo_id": repo.repo_id, "repo_type": repo.repo_type, "url": plan.url(repo),
                         "revision": plan.revision, "commit_url": getattr(commit, "commit_url", None),
                         "files": len(repo.files), "bytes": repo.bytes})
        log.info("published %s", plan.url(repo))
    return receipts


def _push_repo(api, plan: PublishPlan, repo: RepoPlan, token: str):
    """One repo: staged in a temporary folder that is removed whatever happens; returns the commit."""
    staging = tempfile.mkdtemp(prefix="codecorpus-publish-")
    try:
        stage_files(repo, staging)
        api.create_repo(repo.repo_id, repo_type=repo.repo_type, private=plan.private, exist_ok=True)
        if plan.revision != "main":
            api.create_branch(repo.repo_id, branch=plan.revision, repo_type=repo.repo_type, exist_ok=True)
        return api.upload_folder(repo_id=repo.repo_id, folder_path=staging, repo_type=repo.repo_type,
                                 revision=plan.revision, commit_message=plan.commit_message)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"publishing {repo.repo_type} {repo.repo_id} failed ({describe(exc, token)}); "
                        "re-run to resume: files already committed are skipped") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def stage_files(repo: RepoPlan, folder: str) -> None:
    """The repo's tree in `folder`: symlinks to the run's files (no copies) and the generated cards."""
    for f in repo.files:
        dest = Path(folder) / f.path_in_repo
        dest.parent.mkdir(parents=True, exist_ok=True)
        if f.source is not None:
            os.symlink(os.path.abspath(f.source), dest)
        else:
            dest.write_text(f.text or "", encoding="utf-8")
