"""Train a GPT-2-style language model from scratch (not a Spark job: plain Python + torch).

    python jobs/train_lm.py --preset small --tokenizer TOKDIR --train-data out/tokens/train \
        --valid-data out/tokens/valid --out models/code [--set time_budget_s=210] [--resume]

--train-data is packed tokens (Parquet, input_ids), dataset Parquet (content) or raw shards
(*.json.gz); text is tokenized on the fly and packed like the book's ConstantLengthDataset.
--pack-only DIR writes the packed train/valid Parquet to DIR and exits (no torch needed).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

import _door  # noqa: F401,I001  (first: puts lib/ on the path and takes jobs/ off it, see _door.py)
from codecorpus.core.errors import UserError


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="small", help="tiny | small (default small)")
    ap.add_argument("--config", help="TOML file with lm keys (top level or an [lm] table)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a key, e.g. --set time_budget_s=210 (repeatable)")
    ap.add_argument("--tokenizer", required=True, help="Hugging Face tokenizer directory")
    ap.add_argument("--train-data", required=True)
    ap.add_argument("--valid-data", help="default: held out from --train-data (by repository hash)")
    ap.add_argument("--out", help="output model directory (required unless --pack-only)")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if present")
    ap.add_argument("--device", help="cuda / cpu (default: cuda when available)")
    ap.add_argument("--peak-tflops", type=float, help="peak dense bf16 TFLOP/s for MFU (default: by GPU name)")
    ap.add_argument("--pack-only", metavar="DIR", help="write DIR/train and DIR/valid packed Parquet and exit")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        from codecorpus.lm.config import load_lm_config
        from codecorpus.lm.data import load_datasets, write_packed

        cfg = load_lm_config(args.preset, args.config, args.overrides)
        if not args.out and not args.pack_only:
            raise UserError("--out is required (or --pack-only DIR)")
        if not os.path.isfile(os.path.join(args.tokenizer, "tokenizer.json")):
            raise UserError(f"{args.tokenizer}: no tokenizer.json (expected a Hugging Face tokenizer directory)")
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
        t0 = time.perf_counter()
        data = load_datasets(args.train_data, args.valid_data, tokenizer, cfg.seq_length,
                             cfg.valid_fraction, cfg.max_train_tokens, cfg.max_valid_tokens)
        data.info["load_s"] = round(time.perf_counter() - t0, 1)
        data.info["tokenizer"] = os.path.abspath(args.tokenizer)
        logging.info("data: %s", json.dumps(data.info))
        if args.pack_only:
            write_packed(data.train, os.path.join(args.pack_only, "train"))
            write_packed(data.valid, os.path.join(args.pack_only, "valid"))
            with open(os.path.join(args.pack_only, "pack_info.json"), "w") as f:
                json.dump(data.info, f, indent=2)
            print(f"train_lm: packed {data.info['train_sequences']:,} train and {data.info['valid_sequences']:,} "
                  f"valid sequences of {cfg.seq_length} tokens -> {args.pack_only}")
            return 0
        from codecorpus.lm.train import train

        summary = train(cfg, data, tokenizer, args.out, resume=args.resume, device=args.device,
                        peak_tflops=args.peak_tflops)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"train_lm: {summary['steps']} steps, {summary['tokens']:,} tokens, valid loss "
          f"{summary['final_valid_loss']} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
