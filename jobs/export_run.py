"""Export pipeline runs for the GPU machine (plain Python, no Spark): what a device call carries.

    python jobs/export_run.py --run out/gpu-runs/code --run out/gpu-runs/prose --dest .gpu/runs \
        [--form dataset|tokens] [--max-train-tokens N] [--max-mib 56]

Each run goes to DEST/<its folder name>/ with export.json (`lm.export`). Form "dataset" (default):
tokenizer/ + dataset/ + tokens/meta.json, packed again on the GPU machine by the same packer and
checked against the digest of the run's tokens/; form "tokens": tokenizer/ + tokens/ (train cut to
--max-train-tokens). Prints each form's bytes per training token; fails when DEST is over --max-mib.
"""
import sys

from _door import job


def add_arguments(ap) -> None:
    ap.add_argument("--run", action="append", required=True, help="a pipeline run root (repeatable)")
    ap.add_argument("--dest", required=True, help="folder that receives one sub-folder per run")
    ap.add_argument("--form", default="dataset", choices=("dataset", "tokens"))
    ap.add_argument("--max-train-tokens", type=int, default=0, help="form tokens: keep this many (0 = all)")
    ap.add_argument("--max-mib", type=float, default=56.0, help="limit for everything under DEST")


def run(args, cfg) -> int:
    import json
    import os

    from codecorpus.core.errors import UserError
    from codecorpus.lm.export import export_run, tree_bytes

    os.makedirs(args.dest, exist_ok=True)
    for root in args.run:
        name = os.path.basename(os.path.normpath(root))
        man = export_run(root, os.path.join(args.dest, name), args.form, args.max_train_tokens)
        m = man["measure"]
        print(f"export_run: {root} -> {args.dest}/{name} ({args.form}, {man['bytes'] / 2**20:.1f} MiB): "
              f"train {man['splits']['train']['sequences']:,} of {man['splits']['train']['of_sequences']:,} "
              f"sequences; bytes per token: dataset/ {m['dataset']['bytes_per_token']}, "
              f"tokens/ {m['tokens']['bytes_per_token']}")
        print(json.dumps(man["splits"]))
    total = tree_bytes(args.dest) / 2**20
    print(f"export_run: {args.dest} holds {total:.1f} MiB (limit {args.max_mib} MiB)")
    if total > args.max_mib:
        raise UserError(f"{args.dest} holds {total:.1f} MiB, over --max-mib {args.max_mib}: export less "
                        f"(--form tokens --max-train-tokens N) or a smaller corpus")
    return 0


main = job(run, "Export pipeline runs (tokenizer + dataset or tokens) for the GPU machine.", add_arguments)

if __name__ == "__main__":
    sys.exit(main())
