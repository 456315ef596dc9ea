"""What every `jobs/*.py` door shares: arguments, logging, the session, one-line user errors."""
from __future__ import annotations

import argparse
import logging
import sys

from .config import Config, load_config, log_config
from .errors import UserError

log = logging.getLogger("codecorpus")


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    for noisy in ("py4j", "urllib3", "matplotlib", "httpx", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def parser(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--config", help="TOML file layered over conf/default.toml")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key, e.g. --set split.valid_fraction=0.1 (repeatable)")
    ap.add_argument("--force", action="store_true", help="redo stages that are already complete")
    return ap


def load(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config, args.overrides)
    log_config(cfg)
    return cfg


def run_stages(stages: list[str], argv: list[str] | None, description: str, needs_spark: bool = True) -> int:
    """Parse arguments, build the session, run the stages; a UserError is one line and exit 2."""
    from .stages import run_many

    args = parser(description).parse_args(argv)
    setup_logging()
    try:
        cfg = load(args)
        spark = None
        if needs_spark:
            from .spark import get_spark

            spark = get_spark(f"codecorpus-{'-'.join(stages) if len(stages) < 3 else 'pipeline'}")
        run_many(spark, cfg, stages, force=args.force)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
