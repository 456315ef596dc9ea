"""Ingest from a Hugging Face Hub repository (`hf://datasets/<owner>/<name>/...`): the real
huggingface_hub client against the Hub stand-in (tests/hub_standin.py; the Hub itself is not
reachable here), which demands a token. The rows are those of the same shards read from disk."""
from __future__ import annotations

import shutil

import pytest
from codecorpus.core.config import ConfigError, load_config
from codecorpus.core.registry import run_one
from conftest import HUB_TOKEN, ingest_error, ingested_rows, mixed_shards


def test_ingest_from_the_hub_gives_the_rows_of_disk(spark, tmp_path, hub_server, hub_env):
    local = mixed_shards(tmp_path / "shards")
    shutil.copytree(local, hub_server["root"] / "acme" / "dump")
    runs = {}
    for name, source in [("disk", str(local)), ("hub", "hf://datasets/acme/dump"),
                         ("hub_glob", "hf://datasets/acme/dump@main/nested/*.json.gz")]:
        out = str(tmp_path / name)
        runs[name] = run_one(spark, load_config(overrides=[f"input={source}", f"output={out}"]), "ingest"), out
    (disk, disk_out), (hub, hub_out) = runs["disk"], runs["hub"]
    assert disk.rows_out == 50 + 130 + 1 + 1 and hub.extra["shards"] == 3
    for key in ("rows_in", "rows_out", "quarantined", "extra"):
        assert getattr(hub, key) == getattr(disk, key), key
    for kind in ("ingest", "quarantine"):
        assert ingested_rows(hub_out, kind).equals(ingested_rows(disk_out, kind)), kind
    glob_counts, _ = runs["hub_glob"]
    # nested/file-001 alone: z.py kept, big.py over ingest.max_content_bytes
    assert glob_counts.extra["shards"] == 1 and (glob_counts.rows_in, glob_counts.rows_out) == (2, 1)


def test_hub_errors_are_one_line_and_the_hub_is_never_a_run_root(spark, tmp_path, hub_server, hub_env, capsys):
    def error(source: str) -> str:
        return ingest_error(source, tmp_path / "o", capsys)

    assert error("hf://datasets/acme/no-such-repo") == "error: input not found: hf://datasets/acme/no-such-repo"
    assert error("hf://datasets/acme") == ("error: hf://datasets/acme: an hf:// input is a repository, or a folder"
                                           " or glob in it: hf://datasets/<owner>/<name>[@<revision>][/<path>]")
    hub_env(HF_TOKEN="hf_not_the_token")
    line = error("hf://datasets/acme/private")
    assert line.startswith("error: cannot read hf://datasets/acme/private: ") and "401" in line and "HF_TOKEN" in line
    assert "hf_not_the_token" not in line and HUB_TOKEN not in line
    with pytest.raises(ConfigError, match="hf:// is an input only"):
        load_config(overrides=["output=hf://datasets/acme/out"])
