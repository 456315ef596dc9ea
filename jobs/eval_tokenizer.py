"""spark-submit entry point: judge the trained tokenizer (and baselines) on dataset/valid.
`--bytemap` only prints the byte -> symbol table of byte-level BPE and exits (no Spark)."""
import sys

from _door import door

from codecorpus.cli import parser

DESCRIPTION = ("Judge <output>/tokenizer and the tokenizer.baselines on a sample of dataset/valid; "
               "writes <output>/tokenizer_eval/metrics.json.")
_run = door(["eval_tokenizer"], DESCRIPTION)


def main(argv: list[str] | None = None) -> int:
    ap = parser(DESCRIPTION)
    ap.add_argument("--bytemap", action="store_true", help="print the bytes_to_unicode table and exit")
    args = ap.parse_args(argv)
    if args.bytemap:
        from codecorpus.tokenizer.bytemap import format_table

        print(format_table())
        return 0
    return _run(argv)


if __name__ == "__main__":
    sys.exit(main())
