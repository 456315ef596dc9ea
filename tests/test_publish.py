"""Publishing to the Hub, offline: the dry-run plan, the cards, token hygiene and the no-network error.

No Spark: a tiny run root is built with pyarrow (the split's Parquet files), the stage markers and
a tokenizer trained with `tokenizers`. The Hub is not reachable here; the failing real runs go to
a closed local port, to the default endpoint, and to a small local HTTP server standing in for
the Hub that accepts the token check and repo creation, then rejects the upload while echoing
the request's Authorization header back (as a careless server might).
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from codecorpus.core.config import load_config
from codecorpus.core.errors import ConfigError
from codecorpus.core.stage import Counts, marker_path
from codecorpus.io import fs
from codecorpus.publish.plan import plan_publish
from codecorpus.publish.push import RECEIPT, stage_files

ROOT = Path(__file__).resolve().parents[1]
PLANTED = "hf_PLANTEDtokenMustNeverLeak0123456789"

TRAIN = [[("acme/app", "a.py", "mit"), ("acme/app", "b.py", "mit"), ("zed/lib", "c.py", "apache-2.0")],
         [("zed/lib", "d.py", "mit"), ("ops/tool", "e.py", "apache-2.0")]]
VALID = [[("val/one", "f.py", "mit"), ("val/two", "g.py", None)]]


def _write_split(folder: Path, files: list[list[tuple]], first_id: int) -> None:
    folder.mkdir(parents=True)
    next_id = first_id
    for i, rows in enumerate(files):
        content = [f"def f{next_id + j}(x):\n    return x + {j}\n" for j in range(len(rows))]
        table = pa.table({
            "id": pa.array(range(next_id, next_id + len(rows)), pa.int64()),
            "repo_name": [r[0] for r in rows], "path": [r[1] for r in rows],
            "copies": pa.array([1] * len(rows), pa.int64()),
            "size": pa.array([len(c) for c in content], pa.int64()),
            "content": content, "license": pa.array([r[2] for r in rows], pa.string()),
        })
        pq.write_table(table, folder / f"part-{i:05d}-0f00.snappy.parquet")
        next_id += len(rows)
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-00000-0f00.snappy.parquet.crc").write_bytes(b"crc")  # Spark bookkeeping: not shipped


def _write_tokenizer(folder: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["def f(x):\n    return x + 1\n", "class A:\n    pass\n"] * 20, trainer)
    folder.mkdir(parents=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>"}))
    (folder / "_SUCCESS").write_text("")


@pytest.fixture(scope="module")
def run_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("run")
    _write_split(root / "dataset" / "train", TRAIN, 0)
    _write_split(root / "dataset" / "valid", VALID, 100)
    (root / "dataset" / "_SUCCESS").write_text("")
    (root / "dataset" / "README.md").write_text("---\nconfigs: []\n---\n# Local split card\n")  # superseded
    _write_tokenizer(root / "tokenizer")
    markers = [Counts("ingest", 20, 18, {}, 2, {"shards": 2}),
               Counts("clean", 18, 10, {"line_max": 3, "alpha_frac": 2, "few_assignments": 3}),
               Counts("dedup", 10, 7, {"near_duplicate": 3}, 0, {"bands": 25, "rows": 10, "clusters": [3, 1]}),
               Counts("split", 7, 7, {}, 0, {"by": "repo", "splits": {"train": {"files": 5, "bytes": 90, "repos": 3},
                                                                     "valid": {"files": 2, "bytes": 40, "repos": 2}}}),
               Counts("train_tokenizer", 9, 9, {}, 0, {"vocab_size_requested": 300, "n_examples": 9,
                                                       "input": "/secret/local/path", "train_seconds": 0.5})]
    for c in markers:
        fs.write_json_atomic(marker_path(str(root), c.stage), c.check().to_dict())
    return root


def _args(root: Path, *extra: str) -> list[str]:
    return ["--set", f"output={root}", "--set", "publish.dataset_repo=me/corpus",
            "--set", "publish.tokenizer_repo=me/code-tok", *extra]


def _cfg(root: Path, *sets: str):
    return load_config(None, [f"output={root}", "publish.dataset_repo=me/corpus", *sets])


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _files_text(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file())


def _run_job(args: list[str], env_extra: dict[str, str], tmpdir: Path) -> subprocess.CompletedProcess:
    """jobs/publish.py in a child process, so every byte it writes (logging, huggingface_hub's
    own handler, progress bars) is captured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update({"HF_HOME": str(tmpdir / "hf_home"), "TMPDIR": str(tmpdir), **env_extra})
    return subprocess.run([sys.executable, str(ROOT / "jobs" / "publish.py"), *args], env=env,
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def _job_main():
    """jobs/publish.py's main (conftest puts jobs/ on the path)."""
    import publish

    return publish.main


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the dry run ------------------------------------------------------------------------------

def test_dry_run_lists_every_file_with_its_size_and_the_repo_urls(run_root, capsys):
    from huggingface_hub import constants
    main = _job_main()

    before = _snapshot(run_root)
    assert main(_args(run_root, "--dry-run")) == 0
    out = capsys.readouterr().out

    endpoint = constants.ENDPOINT.rstrip("/")
    assert f"dataset repo me/corpus (private if created): {endpoint}/datasets/me/corpus" in out
    assert f"model repo me/code-tok (private if created): {endpoint}/me/code-tok" in out
    for split in ("train", "valid"):
        for p in sorted((run_root / "dataset" / split).glob("*.parquet")):
            assert re.search(rf" {p.stat().st_size:,} B  {split}/{re.escape(p.name)}\n", out), p.name
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert re.search(rf" {(run_root / 'tokenizer' / name).stat().st_size:,} B  {name}\n", out)
    assert out.count("README.md  (generated)") == 2  # the dataset card and the tokenizer card
    assert "_SUCCESS" not in out and ".crc" not in out
    assert "  4 files, " in out and "  3 files, " in out  # card + 2 train + 1 valid; card + 2 tokenizer files
    assert _snapshot(run_root) == before  # a dry run writes nothing


def test_dry_run_with_split_repos_and_a_branch(run_root, capsys):
    main = _job_main()

    assert main(_args(run_root, "--dry-run", "--set", "publish.split_repos=true",
                      "--set", "publish.revision=v1", "--set", "publish.private=false")) == 0
    out = capsys.readouterr().out
    blocks: dict[str, str] = {}
    for line in out.splitlines():
        if " repo " in line and not line.startswith(" "):
            head = line
            blocks[head] = ""
        elif line.startswith("  ") and blocks:
            blocks[head] += line + "\n"
    train = next(v for k, v in blocks.items() if k.startswith("dataset repo me/corpus-train "))
    valid = next(v for k, v in blocks.items() if k.startswith("dataset repo me/corpus-valid "))
    assert "/datasets/me/corpus-train/tree/v1" in out and "(public if created)" in out
    assert train.count("train/part-") == 2 and "valid/" not in train
    assert valid.count("valid/part-") == 1 and "train/" not in valid


# --- the cards --------------------------------------------------------------------------------

def _card(plan, repo_id: str) -> str:
    repo = next(r for r in plan.repos if r.repo_id == repo_id)
    return next(f.text for f in repo.files if f.path_in_repo == "README.md")


def test_dataset_card_states_sources_licences_filters_dedup_splits_and_loading(run_root):
    import yaml

    card = _card(plan_publish(_cfg(run_root)), "me/corpus")
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["configs"] == [{"config_name": "default", "data_files": [
        {"split": "train", "path": "train/*.parquet"}, {"split": "valid", "path": "valid/*.parquet"}]}]
    assert meta["size_categories"] == ["n<1K"]
    # sources
    assert "GitHub dump, cleaned, near-deduplicated, split into train and validation sets" in card
    assert "Records read: 20 from 2 shards; 18 parsed into rows, 2 quarantined" in card
    # licence distribution, per split, from the published files (train: 3 mit + 2 apache; valid: 1 + 1 null)
    assert "| `mit` | 3 | 1 | 4 | 57.1% |" in card
    assert "| `apache-2.0` | 2 | 0 | 2 | 28.6% |" in card
    assert "| `(none)` | 0 | 1 | 1 | 14.3% |" in card
    # filters with their counts, the funnel, the cleaning thresholds
    assert "| clean | `line_max` | 3 | 16.67% |" in card
    assert "| clean | `few_assignments` | 3 | 16.67% |" in card
    assert "| ingest | quarantined | 2 | 10.00% |" in card
    assert "| dedup | 10 | 7 | 3 | 0 |  |" in card
    assert "- `line_max`: 1000" in card and "- `alpha_frac`: 0.25" in card
    # dedup settings: recorded figures win over the config, the rest come from the config
    assert "3 of 10 files removed" in card
    assert "- `bands`: 25" in card and "- `rows`: 10" in card and "- `num_perm`: 256" in card
    assert "- `threshold`: 0.7" in card
    # split sizes and settings
    assert "| train | 5 | 3 | 2 |" in card and "| valid | 2 | 2 | 1 |" in card and "| total | 7 |  | 3 |" in card
    assert "- `by`: `repo`" in card
    # how to load, streaming
    assert "load_dataset('me/corpus', split='train', streaming=True)" in card
    assert "load_dataset('me/corpus', split='valid', streaming=True)" in card
    # ours replaces the split stage's local card (same facts, Hub paths)
    assert "Local split card" not in card and card.count("\n---\n") == 1


def test_card_marks_stages_that_did_not_run(run_root, tmp_path):
    import shutil

    root = tmp_path / "run"
    shutil.copytree(run_root, root)
    (root / "_stages" / "dedup.json").unlink()
    card = _card(plan_publish(_cfg(root, "dedup.enabled=false")), "me/corpus")
    assert "| dedup | - | - | - | - | turned off (dedup.enabled = false) |" in card
    assert "Turned off (dedup.enabled = false): no near-duplicate removal is recorded." in card
    assert "GitHub dump, cleaned, split into" in card


def test_staged_card_lets_datasets_stream_each_split(run_root, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    from datasets import load_dataset

    for sets, repo_id, split, expected in [
        ((), "me/corpus", "train", ["a.py", "b.py", "c.py", "d.py", "e.py"]),
        (("publish.split_repos=true",), "me/corpus-valid", "valid", ["f.py", "g.py"]),
    ]:
        plan = plan_publish(_cfg(run_root, *sets))
        folder = tmp_path / repo_id.replace("/", "_")
        stage_files(next(r for r in plan.repos if r.repo_id == repo_id), str(folder))
        rows = list(load_dataset(str(folder), split=split, streaming=True, cache_dir=str(tmp_path / "cache")))
        assert sorted(r["path"] for r in rows) == expected


def test_local_dataset_card_lets_datasets_load_the_split_folder(run_root, tmp_path, monkeypatch):
    """The split stage's dataset/README.md (publish.cards.local_dataset_card) names each split's files."""
    import shutil

    from codecorpus.publish.cards import local_dataset_card

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    from datasets import load_dataset

    folder = tmp_path / "dataset"
    shutil.copytree(run_root / "dataset", folder)
    files = {s: sorted(p.name for p in (folder / s).glob("*.parquet")) for s in ("train", "valid")}
    counts = {"train": {"files": 5, "bytes": 2_500_000, "repos": 3}, "valid": {"files": 2, "bytes": 40, "repos": 2}}
    card = local_dataset_card(counts, _cfg(run_root), files, ["id", "content"])
    (folder / "README.md").write_text(card)
    assert f"    - train/{files['train'][1]}\n" in card and "| train | 5 | 2.5 | 3 |" in card
    assert "Columns: `id`, `content` (" in card
    ds = load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))
    assert {s: ds[s].num_rows for s in ds} == {"train": 5, "valid": 2}


def test_tokenizer_card_and_files(run_root):
    plan = plan_publish(_cfg(run_root, "publish.dataset_repo=", "publish.tokenizer_repo=me/code-tok"))
    (repo,) = plan.repos
    assert [f.path_in_repo for f in repo.files] == ["README.md", "tokenizer.json", "tokenizer_config.json"]
    card = _card(plan, "me/code-tok")
    assert "AutoTokenizer.from_pretrained('me/code-tok')" in card
    from tokenizers import Tokenizer

    vocab = Tokenizer.from_file(str(run_root / "tokenizer" / "tokenizer.json")).get_vocab_size()
    assert f"| vocabulary size | {vocab:,} |" in card and "| model | BPE |" in card
    assert "| added / special tokens | `<\\|endoftext\\|>` |" in card  # pipes escaped inside the table
    assert "| training `vocab_size_requested` | 300 |" in card and "| training `n_examples` | 9 |" in card
    assert "/secret/local/path" not in card and "train_seconds" not in card


# --- errors -------------------------------------------------------------------------------------

def test_missing_inputs_and_bad_config_are_one_line_errors(tmp_path, capsys):
    main = _job_main()

    assert main(_args(tmp_path, "--dry-run")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: no finished split output at") and "run the split stage first" in err[-1]
    assert main(["--set", f"output={tmp_path}", "--dry-run"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: nothing to publish")
    with pytest.raises(ConfigError, match="publish.dataset_repo"):
        load_config(None, ["publish.dataset_repo=no-namespace"])
    with pytest.raises(ConfigError, match="publish.endpoint"):
        load_config(None, ["publish.endpoint=huggingface.co"])


def test_without_a_token_one_line_error_and_nothing_written(run_root, tmp_path):
    before = _snapshot(run_root)
    result = _run_job(_args(run_root), {}, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: no Hugging Face token: set HF_TOKEN or run `hf auth login`; nothing was uploaded")
    assert "Traceback" not in result.stderr
    assert _snapshot(run_root) == before and not list(tmp_path.glob("codecorpus-publish-*"))


@pytest.mark.parametrize("endpoint", ["closed-port", "silent-server", "default"])
def test_without_network_one_line_error_and_nothing_written(run_root, tmp_path, endpoint):
    silent = socket.socket()  # accepts TCP connections (backlog) but never answers: a black hole
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    url = {"closed-port": f"http://127.0.0.1:{_closed_port()}",
           "silent-server": f"http://127.0.0.1:{silent.getsockname()[1]}", "default": ""}[endpoint]
    before = _snapshot(run_root)
    try:
        result = _run_job(_args(run_root, "--set", f"publish.endpoint={url!r}", "--set", "publish.timeout_s=1"),
                          {"HF_TOKEN": PLANTED}, tmp_path)
    finally:
        silent.close()
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr and last.startswith("error: ")
    if endpoint != "default":  # the default endpoint is unreachable here, but that depends on the machine
        assert last.startswith(f"error: cannot reach the Hugging Face Hub at {url} (")
        assert last.endswith("; nothing was uploaded")
    assert _snapshot(run_root) == before  # no receipt, no staging folder under the run root
    assert not list(tmp_path.glob("codecorpus-publish-*"))
    assert PLANTED not in result.stdout + result.stderr


# --- token hygiene ------------------------------------------------------------------------------

class _EchoingHub(BaseHTTPRequestHandler):
    """Accepts the token check, repo creation and the card's YAML check; rejects everything else
    with a 400 whose message quotes the Authorization header."""
    seen_auth: list[str] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        auth = self.headers.get("Authorization", "")
        _EchoingHub.seen_auth.append(auth)
        path = self.path.split("?")[0]
        if path == "/api/whoami-v2":
            code, body = 200, {"name": "me", "type": "user", "auth": {"accessToken": {"role": "write"}}}
        elif path == "/api/repos/create":
            code, body = 200, {"url": f"http://{self.headers['Host']}/datasets/me/corpus", "name": "me/corpus"}
        elif path == "/api/validate-yaml":
            code, body = 200, {}
        else:
            code, body = 400, {"error": f"refused {path}: you sent Authorization: {auth}"}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_HEAD = _answer

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass


def test_planted_token_never_reaches_outputs_logs_or_files(run_root, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoingHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hub = f"http://127.0.0.1:{server.server_address[1]}"
    env = {"HF_TOKEN": PLANTED, "HF_HUB_VERBOSITY": "debug", "HF_HUB_DISABLE_TELEMETRY": "1"}
    try:
        runs = {
            "dry-run": _run_job(_args(run_root, "--dry-run", "--print-card"), env, tmp_path),
            "no-network": _run_job(_args(run_root, "--set", f"publish.endpoint=http://127.0.0.1:{_closed_port()}"),
                                   env, tmp_path),
            "hub-rejects-upload": _run_job(_args(run_root, "--set", f"publish.endpoint={hub}"), env, tmp_path),
        }
    finally:
        server.shutdown()
        server.server_close()

    assert runs["dry-run"].returncode == 0 and "token: found in HF_TOKEN" in runs["dry-run"].stdout
    assert runs["no-network"].returncode == 2
    rejected = runs["hub-rejects-upload"]
    assert rejected.returncode == 2, rejected.stderr[-2000:]
    last = rejected.stderr.strip().splitlines()[-1]
    assert last.startswith("error: publishing dataset me/corpus failed (") and "re-run to resume" in last
    # the token did travel to the (fake) Hub, and its echo came back scrubbed
    assert f"Bearer {PLANTED}" in _EchoingHub.seen_auth
    assert "Bearer ***" in last
    for name, run in runs.items():
        assert PLANTED not in run.stdout + run.stderr, name
        assert PLANTED[3:20] not in run.stdout + run.stderr, name
    assert PLANTED not in _files_text(run_root) and not (run_root / RECEIPT).exists()
    assert PLANTED not in _files_text(tmp_path)  # TMPDIR of the runs: staging folders are gone
    assert not list(tmp_path.glob("codecorpus-publish-*"))
