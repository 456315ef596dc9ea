"""Compare two pipeline runs stage by stage: the rows of every Parquet output (order-independent
digests) and the files that must be byte-identical (stats.json, tokenizer.json).

    ./spark-submit.sh jobs/verify.py RUN_A RUN_B

Prints the first stage whose output differs, with a few differing ids, and exits 1; exits 0
when the runs agree.
"""
import sys

from _door import job


def add_arguments(ap) -> None:
    ap.add_argument("run_a")
    ap.add_argument("run_b")


def run(args, cfg) -> int:
    from codecorpus.core.verify import compare_runs

    differences, compared = compare_runs(args.spark, args.run_a, args.run_b)
    if differences:
        print(differences[0])
        return 1
    print(f"verify: the runs agree ({compared} outputs compared)")
    return 0


main = job(run, "Compare two runs stage by stage; exit 0 when they agree.", add_arguments, app_name="codecorpus-verify")

if __name__ == "__main__":
    sys.exit(main())
