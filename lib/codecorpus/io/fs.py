"""Filesystem helpers for the run root (a local or shared POSIX path, e.g. NFS on a cluster).

Kept in one place so an object-store backend can replace them without touching the stages.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any


def local_path(path: str) -> str:
    """Strip a `file:` scheme; anything else with a scheme is not supported yet."""
    if path.startswith("file://"):
        return path[len("file://"):]
    if path.startswith("file:"):
        return path[len("file:"):]
    return path


def exists(path: str) -> bool:
    return os.path.exists(local_path(path))


def remove(path: str) -> None:
    p = local_path(path)
    if os.path.isdir(p) and not os.path.islink(p):
        shutil.rmtree(p)
    elif os.path.lexists(p):
        os.remove(p)


def rename(src: str, dst: str) -> None:
    """Atomic on one filesystem: the destination appears complete or not at all."""
    os.makedirs(os.path.dirname(local_path(dst)) or ".", exist_ok=True)
    os.replace(local_path(src), local_path(dst))


def makedirs(path: str) -> None:
    os.makedirs(local_path(path), exist_ok=True)


def write_text_atomic(path: str, text: str) -> None:
    p = Path(local_path(path))
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, p)


def write_json_atomic(path: str, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str) -> Any:
    return json.loads(Path(local_path(path)).read_text())


def check_writable(root: str) -> None:
    from ..errors import UserError

    p = Path(local_path(root))
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / f".write-probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"output folder {root} is not writable: {exc.strerror or exc}") from None


def touch_success(folder: str) -> None:
    """Leave Hadoop's `_SUCCESS` marker in an output folder (Spark writers already do)."""
    p = Path(local_path(folder))
    if p.is_dir() and not (p / "_SUCCESS").exists():
        (p / "_SUCCESS").write_text("")
