"""Train a GPT-2-style language model from scratch on a pipeline run (plain Python + torch, no Spark).

    python jobs/train_lm.py --run out --out models/code [--config conf/lm-tiny.toml] \
        [--set lm.time_budget_s=210] [--resume] [--device cpu]

Reads the run's tokenizer/ and tokens/{train,valid} (the train_tokenizer and tokens stages'
outputs); a run exported by jobs/export_run.py (the GPU machine's carried copy) may hold dataset/
instead, which is packed again here and checked against the run's tokens/ digest. lm.seq_length must equal the seq_length in
tokens/meta.json; a mismatch is an error naming both settings, not a silent re-cut.
Writes MODEL_DIR: a Hugging Face model and tokenizer, checkpoint.pt, train_log.jsonl and
train_summary.json.
"""
import sys

from _door import job


def add_arguments(ap) -> None:
    ap.add_argument("--run", help="run root holding tokenizer/ and tokens/ (default: the config's output)")
    ap.add_argument("--out", required=True, help="model directory to write")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if present")
    ap.add_argument("--device", help="cuda / cpu (default: cuda when available)")
    ap.add_argument("--peak-tflops", type=float, help="peak dense bf16 TFLOP/s for MFU (default: by GPU name)")


def run(args, cfg) -> int:
    from codecorpus.lm.data import load_run
    from codecorpus.lm.train import train

    tokenizer, data = load_run(args.run or cfg.output, cfg.lm)
    summary = train(cfg.lm, data, tokenizer, args.out, resume=args.resume, device=args.device,
                    peak_tflops=args.peak_tflops)
    print(f"train_lm: {summary['steps']} steps, {summary['tokens']:,} tokens, valid loss "
          f"{summary['final_valid_loss']} -> {args.out}")
    return 0


main = job(run, "Train a GPT-2-style language model from scratch on a pipeline run's tokens.", add_arguments)

if __name__ == "__main__":
    sys.exit(main())
