"""Push a finished run's dataset splits (with a card) and tokenizer to the Hugging Face Hub.

Run on purpose, not part of the pipeline: `python jobs/publish.py --set publish.dataset_repo=you/name
--dry-run` lists every file and repo URL without network; drop --dry-run to push (token from
HF_TOKEN or `hf auth login`). Needs no Spark: it reads the run root's files.
"""
import sys

from _door import job


def add_arguments(ap) -> None:
    ap.add_argument("--dry-run", action="store_true",
                    help="list every file, its size and the repo URLs; no network, no token needed")
    ap.add_argument("--print-card", action="store_true",
                    help="with --dry-run: also print the generated README.md of each repo")


def run(args, cfg) -> int:
    from codecorpus.publish.push import publish

    print(publish(cfg, dry_run=args.dry_run, show_cards=args.print_card), flush=True)
    return 0


main = job(run, "Publish the dataset splits and the tokenizer to the Hugging Face Hub.", add_arguments)

if __name__ == "__main__":
    sys.exit(main())
