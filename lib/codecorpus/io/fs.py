"""Filesystem helpers for the run root (a local or shared POSIX path, e.g. NFS on a cluster).

Kept in one place so an object-store backend can replace them without touching the stages.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
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


def list_names(folder: str, suffix: str = "") -> list[str]:
    """Sorted names of the visible files in `folder` that end with `suffix`."""
    p = local_path(folder)
    return sorted(n for n in os.listdir(p) if n.endswith(suffix) and not n.startswith((".", "_"))
                  and os.path.isfile(os.path.join(p, n)))


def makedirs(path: str) -> None:
    os.makedirs(local_path(path), exist_ok=True)


TMP_MARK = ".tmp-"  # hidden temporary files are named ".<name>.tmp-<random>"


def temp_name(path: str) -> str:
    """A hidden, unique sibling of `path` to write before renaming into place."""
    folder, name = os.path.split(local_path(path))
    return os.path.join(folder, f".{name}{TMP_MARK}{uuid.uuid4().hex}")


class AtomicFile:
    """The one atomic writer: write to `.tmp` (a hidden sibling), then `commit()` renames it to
    the final name, so readers see the whole file or none, and a retried task rewrites the same
    name; `discard()` removes the temporary file. As a context manager it commits on success
    and discards on an exception."""

    def __init__(self, path: str):
        self.path = local_path(path)
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        self.tmp = temp_name(self.path)

    def commit(self) -> None:
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        if os.path.lexists(self.tmp):
            os.remove(self.tmp)

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def remove_partial_files(folder: str) -> int:
    """Delete the temporary files that failed or killed task attempts left behind; returns how many."""
    p = local_path(folder)
    if not os.path.isdir(p):
        return 0
    leftovers = [n for n in os.listdir(p) if n.startswith(".") and TMP_MARK in n]
    for name in leftovers:
        os.remove(os.path.join(p, name))
    return len(leftovers)


def write_text_atomic(path: str, text: str) -> None:
    with AtomicFile(path) as f:
        Path(f.tmp).write_text(text)


def write_json_atomic(path: str, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str) -> Any:
    return json.loads(Path(local_path(path)).read_text())


def read_bytes(path: str) -> bytes:
    return Path(local_path(path)).read_bytes()


def check_writable(root: str) -> None:
    from codecorpus.core.errors import UserError

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
