"""Push a finished run's dataset splits (with a card) and tokenizer to the Hugging Face Hub.

Run on purpose, not part of the pipeline: `python jobs/publish.py --set publish.dataset_repo=you/name
--dry-run` lists every file and repo URL without network; drop --dry-run to push (token from
HF_TOKEN or `hf auth login`). Needs no Spark: it reads the run root's files.
"""
import sys

import _door  # noqa: F401  (puts lib/ on the path)

from codecorpus.cli import load, parser, setup_logging
from codecorpus.errors import UserError


def main(argv: list[str] | None = None) -> int:
    ap = parser("Publish the dataset splits and the tokenizer to the Hugging Face Hub.")
    ap.add_argument("--dry-run", action="store_true",
                    help="list every file, its size and the repo URLs; no network, no token needed")
    ap.add_argument("--print-card", action="store_true",
                    help="with --dry-run: also print the generated README.md of each repo")
    args = ap.parse_args(argv)
    setup_logging()
    try:
        cfg = load(args)
        from codecorpus.publish import publish

        print(publish(cfg, dry_run=args.dry_run, show_cards=args.print_card), flush=True)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
