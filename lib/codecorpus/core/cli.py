"""The one way every job starts: `--config FILE`, `--set key=value`, logging, the session for
jobs that need Spark, and a UserError as one line on stderr with exit code 2.

`stage_job(stages, ...)` runs pipeline stages; `job(run, ...)` runs anything else (publishing,
the GPU stage) with the same arguments plus its own.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from codecorpus.core.config import Config, load_config, log_config
from codecorpus.core.errors import UserError

log = logging.getLogger("codecorpus")

Main = Callable[[list[str] | None], int]


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    for noisy in ("py4j", "urllib3", "matplotlib", "httpx", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def parser(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--config", help="TOML file layered over conf/default.toml")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key, e.g. --set split.valid_fraction=0.1 (repeatable)")
    return ap


def load(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config, args.overrides)
    log_config(cfg)
    return cfg


def job(run: Callable[[argparse.Namespace, Config], int | None], description: str,
        add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
        app_name: str | None = None) -> Main:
    """`main(argv) -> exit code` for a job: `run(args, cfg)` after the shared start-up. With
    `app_name`, `args.spark` holds a session made by the one factory."""

    def main(argv: list[str] | None = None) -> int:
        ap = parser(description)
        if add_arguments is not None:
            add_arguments(ap)
        args = ap.parse_args(argv)
        setup_logging()
        try:
            cfg = load(args)
            args.spark = None
            if app_name:
                from codecorpus.core.spark import get_spark

                args.spark = get_spark(app_name)
            return run(args, cfg) or 0
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return main


def stage_job(stages: list[str], description: str) -> Main:
    """`main(argv)` running the given pipeline stages in order (complete ones skipped unless --force)."""
    from codecorpus.core import registry

    def add(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--force", action="store_true", help="redo stages that are already complete")

    def run(args: argparse.Namespace, cfg: Config) -> int:
        spark = None
        if any(registry.get(s).needs_spark for s in stages):
            from codecorpus.core.spark import get_spark

            spark = get_spark(f"codecorpus-{'-'.join(stages) if len(stages) < 3 else 'pipeline'}")
        registry.run_many(spark, cfg, stages, force=args.force)
        return 0

    return job(run, description, add)
