"""spark-submit entry point: judge the trained tokenizer (and baselines) on dataset/valid.
`--bytemap` only prints the byte -> symbol table of byte-level BPE and exits (no Spark)."""
import sys

from _door import stage_job

DESCRIPTION = ("Judge <output>/tokenizer and the tokenizer.baselines on a sample of dataset/valid; "
               "writes <output>/tokenizer_eval/metrics.json. --bytemap: print the byte -> symbol "
               "table of byte-level BPE and exit.")
_run = stage_job(["eval_tokenizer"], DESCRIPTION)


def main(argv: list[str] | None = None) -> int:
    if "--bytemap" in (sys.argv[1:] if argv is None else argv):
        from codecorpus.tokenizer.bytemap import format_table

        print(format_table())
        return 0
    return _run(argv)


if __name__ == "__main__":
    sys.exit(main())
