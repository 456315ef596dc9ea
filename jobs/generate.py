"""Compare the generations of several causal LMs side by side (not a Spark job).

    python jobs/generate.py --model models/code --model models/prose \
        --prompt $'\\n UDA is' --code-prompt 'def fibonacci(n):' --out-json gen.json --out-md gen.md
    python jobs/generate.py --model models/code --throughput --out-json tp.json   # pipeline loop vs fastgen
    python jobs/generate.py --model models/code --equality --out-json eq.json     # greedy: fastgen == loop?

Every model gets the same prompts, seed and decoding; text prompts use the book's pipeline
defaults, code prompts the book's code settings and are cut at the next top-level statement.
`--seed-once` is the book's exact order: the seed set once, then the models one after the other.
"""
import json
import sys

from _door import job

THROUGHPUT_PROMPTS = [
    "def fibonacci(n):", "import numpy as np\n", "class Stack:\n", "def read_csv(path):",
    "# Sort a list of dictionaries by key\n", "def is_prime(n):", "from collections import Counter\n",
    "def merge_sort(items):", "\n UDA is", "The quick brown fox", "def main():\n", "async def fetch(url):",
    "def parse_args(argv):", "with open(path) as f:\n", "def binary_search(arr, x):", "for i in range(10):\n",
]


def add_arguments(ap) -> None:
    ap.add_argument("--model", action="append", required=True, help="model directory (repeatable)")
    ap.add_argument("--prompt", action="append", default=[], help="text prompt (repeatable)")
    ap.add_argument("--code-prompt", action="append", default=[], help="code prompt (repeatable)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--num-return-sequences", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=50)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--top-k", type=int, default=50)
    ap.add_argument("--top-p", type=float, default=1.0)
    ap.add_argument("--code-max-length", type=int, default=64)
    ap.add_argument("--code-temperature", type=float, default=0.4)
    ap.add_argument("--code-top-k", type=int, default=0)
    ap.add_argument("--code-top-p", type=float, default=0.95)
    ap.add_argument("--greedy", action="store_true", help="no sampling (both prompt kinds)")
    ap.add_argument("--seed-once", action="store_true",
                    help="the book's order: set_seed once, then every model in turn (default: seed per model)")
    ap.add_argument("--device", help="cuda / cpu (default: cuda when available)")
    ap.add_argument("--throughput", action="store_true",
                    help="measure batched generate against a pipeline('text-generation') loop instead")
    ap.add_argument("--equality", action="store_true",
                    help="greedy token ids of fastgen against a pipeline loop, float32 and bf16")
    ap.add_argument("--equality-new-tokens", type=int, default=32)
    ap.add_argument("--throughput-new-tokens", type=int, default=64)
    ap.add_argument("--throughput-repeats", type=int, default=5)
    ap.add_argument("--throughput-prompts", type=int, default=len(THROUGHPUT_PROMPTS),
                    help="use the first N of the built-in prompts (when no --prompt/--code-prompt)")
    ap.add_argument("--out-json", help="write the report as JSON")
    ap.add_argument("--out-md", help="write the report as markdown")


def decodings(args):
    from codecorpus.lm.generate import Decoding

    text = Decoding(max_length=args.max_length, do_sample=not args.greedy, temperature=args.temperature,
                    top_k=args.top_k, top_p=args.top_p, num_return_sequences=args.num_return_sequences)
    code = Decoding(max_length=args.code_max_length, do_sample=not args.greedy, temperature=args.code_temperature,
                    top_k=args.code_top_k, top_p=args.code_top_p, num_return_sequences=args.num_return_sequences)
    return text, code


def throughput(args, code_dec) -> tuple[dict, str]:
    from transformers.utils import logging as hf_logging

    from codecorpus.lm import generate as G

    hf_logging.set_verbosity_error()  # the pipeline loop warns on every call
    prompts = args.prompt + args.code_prompt or THROUGHPUT_PROMPTS[: args.throughput_prompts]
    report = G.throughput(args.model, prompts, code_dec, args.throughput_new_tokens, args.seed, args.device,
                          args.throughput_repeats)
    return report, G.throughput_markdown(report)


def equality(args) -> tuple[dict, str]:
    from transformers.utils import logging as hf_logging

    from codecorpus.lm import generate as G

    hf_logging.set_verbosity_error()
    prompts = args.prompt + args.code_prompt or THROUGHPUT_PROMPTS[: args.throughput_prompts]
    reports = [G.greedy_equality(m, prompts, args.equality_new_tokens, args.device) for m in args.model]
    return {"models": reports}, "\n".join(G.equality_markdown(r) for r in reports)


def compare(args, text_dec, code_dec) -> tuple[dict, str]:
    from codecorpus.lm import generate as G

    given = bool(args.prompt or args.code_prompt)  # neither: the book's prompt and a code one
    prompts = args.prompt if given else [G.BOOK_PROMPT]
    code_prompts = args.code_prompt if given else [G.CODE_PROMPT]
    report = G.compare(args.model, prompts, code_prompts, text_dec, code_dec, args.seed, args.device,
                       seed_once=args.seed_once)
    return report, G.to_markdown(report)


def run(args, cfg) -> int:
    from codecorpus.lm.generate import check_model_dirs

    check_model_dirs(args.model)
    text_dec, code_dec = decodings(args)
    if args.throughput:
        report, md = throughput(args, code_dec)
    elif args.equality:
        report, md = equality(args)
    else:
        report, md = compare(args, text_dec, code_dec)
    if args.out_json:
        with open(args.out_json, "w") as f:
            json.dump(report, f, indent=2, ensure_ascii=False)
    if args.out_md:
        with open(args.out_md, "w") as f:
            f.write(md)
    print(md)
    return 0


main = job(run, "Compare the generations of several causal language models side by side.", add_arguments)

if __name__ == "__main__":
    sys.exit(main())
