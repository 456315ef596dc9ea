"""Side-by-side generations of several causal LMs, batched, under one seed and one decoding.

The book's experiment: the same architecture trained on different data (openai-gpt on books,
gpt2 on web text) continues "\\n UDA is" very differently. Here every model gets every prompt,
all prompts x `num_return_sequences` in one `generate` call (left padding), `set_seed` before
each model so each starts from the same random state. Code prompts are cut at the next
top-level statement, as the book's `first_block` does.
"""
from __future__ import annotations

import gc
import logging
import os
import re
import time
from dataclasses import asdict, dataclass

from codecorpus.core.errors import UserError

log = logging.getLogger("codecorpus")

BOOK_PROMPT = "\n UDA is"
CODE_PROMPT = "def fibonacci(n):"
# The book's first_block: a completion ends where the next top-level def/class/print/if/#/@ starts.
CODE_STOP = re.compile(r"\n(?:class|def|#|@|print|if)")


@dataclass(frozen=True)
class Decoding:
    """Sampling settings. `max_length` counts prompt + continuation, like the pipeline's."""
    max_length: int = 50  # gpt2's text-generation default in the book's era
    do_sample: bool = True
    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 1.0
    num_return_sequences: int = 3

    def __post_init__(self) -> None:
        if self.max_length < 2 or self.num_return_sequences < 1:
            raise UserError("max_length must be at least 2 and num_return_sequences at least 1")
        if self.do_sample and (self.temperature <= 0 or not 0 < self.top_p <= 1):
            raise UserError("sampling needs temperature > 0 and 0 < top_p <= 1")


BOOK_DECODING = Decoding()
# The book's code-completion settings (chapter 10): temperature 0.4, top_p 0.95, top_k 0, 64 tokens.
CODE_DECODING = Decoding(max_length=64, temperature=0.4, top_k=0, top_p=0.95)


def first_block(completion: str, at_line_start: bool = False) -> str:
    """`at_line_start`: the prompt ended with a newline, so the completion's first line is a line
    of its own and may itself be the next top-level statement (the book's split misses that)."""
    if at_line_start:
        return CODE_STOP.split("\n" + completion)[0][1:]
    return CODE_STOP.split(completion)[0]


def device_and_dtype(device: str | None = None):
    """bf16 on CUDA, float32 on CPU."""
    import torch

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return dev, (torch.bfloat16 if dev.type == "cuda" else torch.float32)


def load_tokenizer(path: str):
    """A model's tokenizer (a local folder, or a Hub id where the Hub is reachable), through the
    project's one loader, set up for batched generation."""
    from codecorpus.tokenizer.load import load_tokenizer as load_one

    return for_generation(load_one(path, allow_hub=True))


def for_generation(tok):
    tok.padding_side = "left"  # decoder-only: pad before the prompt so every row ends at the prompt's end
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def check_model_dirs(paths: list[str]) -> None:
    for path in paths:
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise UserError(f"{path}: not a model directory (no config.json)")


def load_model(path: str, device=None, dtype=None):
    from transformers import AutoModelForCausalLM

    dev, dt = device_and_dtype(device)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or dt)
    return model.to(dev).eval()


def count_parameters(model) -> dict:
    """numel (true count) next to the book's sum(len(p)) (first dimensions only)."""
    return {"numel": sum(p.numel() for p in model.parameters()),
            "book_sum_len_p": sum(len(p) for p in model.parameters())}


@dataclass
class Generation:
    texts: list[list[str]]  # per prompt, num_return_sequences full texts (prompt + continuation)
    new_tokens: int  # generated tokens kept (up to and including the first EOS, within max_length)
    seconds: float


def _sync(device) -> None:
    import torch

    if getattr(device, "type", "cpu") == "cuda":
        torch.cuda.synchronize(device)


def _encode(tokenizer, prompts: list[str], dec: Decoding, positions: int, max_new_tokens: int | None):
    """Left-padded prompts and the number of new tokens that fits max_length and the model."""
    if not prompts or any(not p for p in prompts):
        raise UserError("prompts must be non-empty strings")
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    lengths = enc["attention_mask"].sum(dim=1).tolist()
    width = enc["input_ids"].shape[1]
    if max_new_tokens is None:
        max_new_tokens = dec.max_length - min(lengths)
    max_new_tokens = min(max_new_tokens, positions - width)
    if max_new_tokens < 1:
        raise UserError(f"a prompt of {max(lengths)} tokens leaves no room within max_length={dec.max_length} "
                        f"and the model's {positions} positions")
    return enc, lengths, max_new_tokens


def _positions(model) -> int:
    c = model.config
    return getattr(c, "n_positions", None) or getattr(c, "max_position_embeddings", 1 << 30)


def generate(model, tokenizer, prompts: list[str], dec: Decoding, seed: int | None,
             min_new_tokens: int | None = None, max_new_tokens: int | None = None) -> Generation:
    """One batched `generate` over all prompts x num_return_sequences. `seed` None: go on from
    the current random state (the book's order: seeded once, then one model after the other)."""
    import torch
    from transformers import set_seed

    enc, lengths, max_new_tokens = _encode(tokenizer, prompts, dec, _positions(model), max_new_tokens)
    width = enc["input_ids"].shape[1]
    if seed is not None:
        set_seed(seed)
    _sync(model.device)
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model.generate(input_ids=enc["input_ids"].to(model.device),
                             attention_mask=enc["attention_mask"].to(model.device),
                             max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
                             num_return_sequences=dec.num_return_sequences,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                             **_sampling(dec))
    _sync(model.device)
    seconds = time.perf_counter() - t0
    return _texts(tokenizer, prompts, out[:, width:].tolist(), lengths, dec, max_new_tokens, min_new_tokens,
                  seconds)


def generate_fast(fast, tokenizer, prompts: list[str], dec: Decoding, seed: int,
                  min_new_tokens: int | None = None, max_new_tokens: int | None = None) -> Generation:
    """`generate`'s work through `lm.fastgen` (static KV cache, CUDA-graph decode step): the same
    prompts, decoding and text handling; its own random stream (same seed, other samples)."""
    from codecorpus.lm.fastgen import Sampler

    enc, lengths, max_new_tokens = _encode(tokenizer, prompts, dec, fast.gpt.shape["n_positions"],
                                           max_new_tokens)
    k = dec.num_return_sequences
    ids = enc["input_ids"].repeat_interleave(k, dim=0)
    mask = enc["attention_mask"].repeat_interleave(k, dim=0)
    sampler = Sampler(dec.do_sample, dec.temperature, dec.top_k, dec.top_p)
    _sync(fast.device)
    t0 = time.perf_counter()
    new = fast.generate_ids(ids, mask, max_new_tokens, sampler, seed, min_new_tokens or 0)
    seconds = time.perf_counter() - t0  # generate_ids returns CPU tensors: synchronised
    return _texts(tokenizer, prompts, new.tolist(), lengths, dec, max_new_tokens, min_new_tokens, seconds)


def _texts(tokenizer, prompts, new: list[list[int]], lengths, dec: Decoding, max_new_tokens: int,
           min_new_tokens, seconds: float) -> Generation:
    """Full texts per prompt: each row's new ids within max_length, up to its first EOS."""
    k = dec.num_return_sequences
    texts: list[list[str]] = [[] for _ in prompts]
    kept = 0
    for row, ids in enumerate(new):
        i = row // k
        room = max_new_tokens if min_new_tokens else max(dec.max_length - lengths[i], 0)
        ids = ids[:room]
        if tokenizer.eos_token_id in ids and not min_new_tokens:
            ids = ids[: ids.index(tokenizer.eos_token_id) + 1]
        kept += len(ids)
        texts[i].append(prompts[i] + tokenizer.decode(ids, skip_special_tokens=True,
                                                      clean_up_tokenization_spaces=True))
    return Generation(texts, kept, seconds)


def _sampling(dec: Decoding) -> dict:
    """generate()'s sampling arguments (only do_sample=False when greedy: the others would warn)."""
    if not dec.do_sample:
        return {"do_sample": False}
    return {"do_sample": True, "temperature": dec.temperature, "top_k": dec.top_k, "top_p": dec.top_p}


def release(device) -> int | None:
    """Call after `del model` (every reference): collect it, hand the cached blocks back, and return
    torch.cuda.memory_allocated() (None on CPU)."""
    import torch

    gc.collect()
    if getattr(device, "type", "cpu") == "cuda":
        # cuBLAS keeps a workspace (32 MiB on Hopper) in the caching allocator: not the model's
        clear = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)
        if clear:
            clear()
        torch.cuda.empty_cache()
        return int(torch.cuda.memory_allocated(device))
    return None


def compare(model_paths: list[str], prompts: list[str], code_prompts: list[str],
            text_dec: Decoding = BOOK_DECODING, code_dec: Decoding = CODE_DECODING, seed: int = 42,
            device: str | None = None, seed_once: bool = False) -> dict:
    """Every model on every prompt. By default one model on the device at a time, the seed set
    before each model's generations; `seed_once`: the book's order instead: all models loaded and
    warmed up, `set_seed` once, then each model's generations in turn from the running state."""
    from transformers import set_seed

    dev, dtype = device_and_dtype(device)
    report = {"seed": seed, "seed_once": seed_once, "device": str(dev), "dtype": str(dtype).replace("torch.", ""),
              "prompts": prompts, "code_prompts": code_prompts,
              "decoding": asdict(text_dec), "code_decoding": asdict(code_dec), "models": []}
    work = (prompts, text_dec, code_prompts, code_dec)
    if not seed_once:
        for path in model_paths:
            report["models"].append(_generations(_load_warm(path, dev, dtype, work, seed), work, seed))
        return report
    loaded = [_load_warm(path, dev, dtype, work, seed) for path in model_paths]
    set_seed(seed)
    while loaded:  # each model is freed after its turn (the later ones are still loaded then)
        report["models"].append(_generations(loaded.pop(0), work, None))
    return report


def _load_warm(path: str, dev, dtype, work, seed: int) -> list:
    """[entry, model, tokenizer]: loaded, counted, and warmed up with the same prompts and
    decodings (CUDA context, lazily loaded kernels of the sampling ops) so tokens/s measures
    generation."""
    import torch

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    tok = load_tokenizer(path)
    model = load_model(path, dev, dtype)
    entry = {"model": path, "parameters": count_parameters(model), "load_s": round(time.perf_counter() - t0, 2),
             "generations": [], "code_generations": []}
    prompts, text_dec, code_prompts, code_dec = work
    for ps, dec in ((prompts, text_dec), (code_prompts, code_dec)):
        if ps:
            generate(model, tok, ps, dec, seed, max_new_tokens=4)
    return [entry, model, tok]


def _generations(loaded: list, work, seed: int | None) -> dict:
    """The model's text and code generations into its entry; then the model is freed. `loaded`
    (from `_load_warm`) is emptied first: no reference may outlive the `del` below, or
    memory_allocated_after_free counts the model (a tuple passed as *args would hold one)."""
    import torch

    entry, model, tok = loaded
    loaded.clear()
    prompts, text_dec, code_prompts, code_dec = work
    dev = model.device
    tokens, seconds = 0, 0.0
    if prompts:
        g = generate(model, tok, prompts, text_dec, seed)
        tokens, seconds = tokens + g.new_tokens, seconds + g.seconds
        entry["generations"] = [{"prompt": p, "texts": t} for p, t in zip(prompts, g.texts)]
    if code_prompts:
        g = generate(model, tok, code_prompts, code_dec, seed)
        tokens, seconds = tokens + g.new_tokens, seconds + g.seconds
        entry["code_generations"] = [
            {"prompt": p, "texts": t,
             "first_block": [p + first_block(x[len(p):], p.endswith("\n")) for x in t]}
            for p, t in zip(code_prompts, g.texts)]
    entry["new_tokens"] = tokens
    entry["generate_s"] = round(seconds, 3)
    entry["tokens_per_s"] = round(tokens / seconds, 1) if seconds else None
    if dev.type == "cuda":
        entry["peak_memory_mib"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
    del tok, model
    entry["memory_allocated_after_free"] = release(dev)
    return entry


# ---------------------------------------------------------------- speed: pipeline loop, generate, fastgen

ENGINES = ("pipeline_loop", "batched", "fast")


def throughput(model_paths: list[str], prompts: list[str], dec: Decoding, new_tokens: int = 64,
               seed: int = 42, device: str | None = None, repeats: int = 5) -> dict:
    """Three ways to do the same work on one model: the loop a user would write (a
    `pipeline("text-generation")` call per prompt), one batched `generate` call, and `lm.fastgen`
    (batched, static KV cache, CUDA-graph decode step). Same prompts and sampling; every row is
    forced to exactly `new_tokens` new tokens (min = max), so all do the same work. After one
    warm-up of each, `repeats` rounds alternate the three (a slow drift of the machine hits all
    alike); medians, min and max per engine, and the speed-ups as per-round ratios."""
    import statistics

    dev, dtype = device_and_dtype(device)
    k = dec.num_return_sequences
    out = {"prompts": len(prompts), "num_return_sequences": k, "new_tokens_per_sequence": new_tokens,
           "tokens_per_run": len(prompts) * k * new_tokens, "repeats": repeats, "device": str(dev), "models": []}
    for path in model_paths:
        times, first = _time_engines(path, prompts, dec, new_tokens, seed, dev, dtype, repeats)
        release(dev)
        med = {n: statistics.median(ts) for n, ts in times.items()}
        entry = {"model": path, "seconds": {n: [round(t, 4) for t in ts] for n, ts in times.items()},
                 "first_call_s": {n: round(t, 3) for n, t in first.items()},
                 "median_s": {n: round(t, 4) for n, t in med.items()},
                 "tokens_per_s": {n: round(out["tokens_per_run"] / t, 1) for n, t in med.items()}}
        entry["speedup_over_pipeline"] = {}
        for fast in ("batched", "fast"):
            ratios = [p / f for p, f in zip(times["pipeline_loop"], times[fast])]
            entry["speedup_over_pipeline"][fast] = {"median": round(statistics.median(ratios), 2),
                                                    "min": round(min(ratios), 2), "max": round(max(ratios), 2)}
        # the key the run report (report/lm.py) reads: batched generate's median speed-up
        entry["speedup_batched_over_pipeline"] = entry["speedup_over_pipeline"]["batched"]["median"]
        out["models"].append(entry)
    return out


def _time_engines(path: str, prompts: list[str], dec: Decoding, new_tokens: int, seed: int, dev, dtype,
                  repeats: int) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Wall times of each engine on one model (freed on return), and of each one's first call."""
    from transformers import pipeline, set_seed

    from codecorpus.lm.fastgen import FastGenerator
    from codecorpus.lm.model import from_hf

    tok = load_tokenizer(path)
    model = load_model(path, dev, dtype)
    fast = FastGenerator(from_hf(model).eval(), tok.eos_token_id)
    pipe = pipeline("text-generation", model=model, tokenizer=tok, device=dev)
    forced = {"min_new_tokens": new_tokens, "max_new_tokens": new_tokens}

    def run_pipeline():
        set_seed(seed)
        for p in prompts:
            pipe(p, num_return_sequences=dec.num_return_sequences, pad_token_id=tok.pad_token_id,
                 clean_up_tokenization_spaces=True, **forced, **_sampling(dec))

    fns = {"pipeline_loop": run_pipeline,
           "batched": lambda: generate(model, tok, prompts, dec, seed, **forced),
           "fast": lambda: generate_fast(fast, tok, prompts, dec, seed, **forced)}
    first = {name: _wall(fn, dev) for name, fn in fns.items()}  # warm-up: shapes, kernels, graph capture
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(_wall(fn, dev))
    fast.release()
    return times, first


def _wall(fn, device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def greedy_equality(path: str, prompts: list[str], new_tokens: int = 32, device: str | None = None,
                    dtypes: tuple[str, ...] = ("float32", "bfloat16")) -> dict:
    """Greedy token ids of the fast path (all prompts in one left-padded batch) against the slow
    path (a pipeline call per prompt), per dtype. float32 (TF32 off) is the test of the
    implementation; in bf16 the two paths' kernels round differently, and a near-tie can then
    flip a greedy choice, so that is reported as how far the two agree."""
    import torch
    from transformers import pipeline

    from codecorpus.lm.fastgen import FastGenerator, Sampler
    from codecorpus.lm.model import from_hf

    dev, _ = device_and_dtype(device)
    tok = load_tokenizer(path)
    out = {"model": path, "prompts": len(prompts), "new_tokens": new_tokens, "dtypes": {}}
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        for name in dtypes:
            model = load_model(path, dev, getattr(torch, name))
            pipe = pipeline("text-generation", model=model, tokenizer=tok, device=dev)
            slow = [pipe(p, do_sample=False, min_new_tokens=new_tokens, max_new_tokens=new_tokens,
                         return_tensors=True, pad_token_id=tok.pad_token_id)[0]["generated_token_ids"]
                    for p in prompts]
            enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            fast = FastGenerator(from_hf(model).eval(), tok.eos_token_id)
            new = fast.generate_ids(enc["input_ids"], enc["attention_mask"], new_tokens, Sampler(),
                                    min_new_tokens=new_tokens).tolist()
            fast.release()
            lengths = enc["attention_mask"].sum(dim=1).tolist()
            out["dtypes"][name] = _agreement([list(s)[n:] for s, n in zip(slow, lengths)], new)
            del model, pipe, fast
            release(dev)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    return out


def _agreement(slow: list[list[int]], fast: list[list[int]]) -> dict:
    firsts = []
    for s, f in zip(slow, fast):
        diff = [i for i, (a, b) in enumerate(zip(s, f)) if a != b]
        firsts.append(diff[0] if diff else None if len(s) == len(f) else min(len(s), len(f)))
    same = sum(d is None for d in firsts)
    return {"equal_sequences": same, "sequences": len(slow), "all_equal": same == len(slow),
            "first_difference_at": firsts}


def _fence(text: str) -> str:
    return "```\n" + text.replace("```", "` ` `") + "\n```"


def to_markdown(report: dict) -> str:
    lines = [f"# Generations (seed {report['seed']}, {report['device']}, {report['dtype']})", ""]
    lines += ["| model | parameters (numel) | book's sum(len(p)) | new tokens | tokens/s | peak GPU MiB | "
              "allocated after free |", "|---|---:|---:|---:|---:|---:|---:|"]
    for m in report["models"]:
        lines.append(f"| {m['model']} | {m['parameters']['numel']:,} | {m['parameters']['book_sum_len_p']:,} | "
                     f"{m['new_tokens']} | {m['tokens_per_s']} | {m.get('peak_memory_mib', '-')} | "
                     f"{m['memory_allocated_after_free'] if m['memory_allocated_after_free'] is not None else '-'} |")
    lines += ["", f"Decoding (text prompts): `{report['decoding']}`",
              f"Decoding (code prompts): `{report['code_decoding']}`", ""]
    for key, title in (("generations", "Text prompts"), ("code_generations", "Code prompts (cut at the next top-level statement)")):
        if not any(m[key] for m in report["models"]):
            continue
        lines += [f"## {title}", ""]
        prompts = report["prompts"] if key == "generations" else report["code_prompts"]
        for i, prompt in enumerate(prompts):
            lines += [f"### Prompt {prompt!r}", ""]
            for m in report["models"]:
                item = m[key][i]
                texts = item.get("first_block", item["texts"])
                lines += [f"**{m['model']}**", ""]
                for j, t in enumerate(texts, 1):
                    lines += [f"{j}.", "", _fence(t), ""]
    return "\n".join(lines) + "\n"


def throughput_markdown(t: dict) -> str:
    lines = ["## Pipeline loop vs batched generate vs fastgen", "",
             f"{t['prompts']} prompts x {t['num_return_sequences']} sequences x "
             f"{t['new_tokens_per_sequence']} new tokens (forced), median of {t['repeats']} alternating rounds "
             f"after a warm-up, {t['device']}; speed-ups are per-round ratios, median (min-max).", "",
             "| model | engine | median s | min-max s | tokens/s | first call s | speed-up over the loop |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for m in t["models"]:
        for e in ENGINES:
            sp = m["speedup_over_pipeline"].get(e)
            ts = m["seconds"][e]
            speedup = f"{sp['median']}x ({sp['min']}-{sp['max']})" if sp else "1x"
            lines.append(f"| {m['model']} | {e} | {m['median_s'][e]} | {min(ts)}-{max(ts)} | "
                         f"{m['tokens_per_s'][e]} | {m['first_call_s'][e]} | {speedup} |")
    return "\n".join(lines) + "\n"


def equality_markdown(e: dict) -> str:
    lines = [f"## Greedy: fastgen vs pipeline loop ({e['prompts']} prompts, {e['new_tokens']} new tokens)", "",
             "| dtype | equal sequences | first differing token (per prompt) |", "|---|---:|---|"]
    for name, r in e["dtypes"].items():
        lines.append(f"| {name} | {r['equal_sequences']}/{r['sequences']} | "
                     f"{', '.join('-' if d is None else str(d) for d in r['first_difference_at'])} |")
    return "\n".join(lines) + "\n"
