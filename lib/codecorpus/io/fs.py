"""File operations on run-root paths, for the driver and the executors: the one place that touches
the run root's storage.

A run root is a plain path, a file:// URI, or any URI `io.uri` resolves (s3://, gs://, hdfs://).
Local paths keep POSIX semantics: a file is written under a hidden temporary name and renamed into
place, and a folder is renamed in one step. Object stores have no rename: a file is uploaded
straight to its name (an upload becomes visible only when it is complete, and a retried task
uploads the same name again), a folder is moved by copying its objects server-side and deleting
them, and the stage marker written after the move (core.stage) is what says a stage's outputs are
complete. Readers of a run (the stages, verify, the report) only read what a marker vouches for.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from codecorpus.io import uri
from codecorpus.io.uri import local_path  # noqa: F401  (callers spell it fs.local_path)

TMP_MARK = ".tmp-"  # hidden temporary files are named ".<name>.tmp-<random>"
COPY_THREADS = 16   # server-side copies in flight while an object-store folder is moved


def _remote(path: str) -> uri.Location | None:
    """The filesystem of a path that is not local (None for a local one)."""
    return None if uri.is_local(path) else uri.resolve(path)


def _type(loc: uri.Location, path: str) -> pafs.FileType:
    with uri.user_errors(loc.uri(path), "cannot read"):
        return loc.fs.get_file_info(path).type


def is_local(path: str) -> bool:
    return uri.is_local(path)


def renames_atomically(path: str) -> bool:
    """Whether a folder under `path` is renamed in one step (local disks, HDFS), or object by
    object (object stores)."""
    return is_local(path) or not uri.is_object_store(uri.resolve(path))


def exists(path: str) -> bool:
    loc = _remote(path)
    if loc is None:
        return os.path.exists(local_path(path))
    return _type(loc, loc.path) != pafs.FileType.NotFound


def is_dir(path: str) -> bool:
    loc = _remote(path)
    if loc is None:
        return os.path.isdir(local_path(path))
    return _type(loc, loc.path) == pafs.FileType.Directory


def remove(path: str) -> None:
    loc = _remote(path)
    if loc is None:
        p = local_path(path)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        elif os.path.lexists(p):
            os.remove(p)
        return
    found = _type(loc, loc.path)
    with uri.user_errors(path, "cannot delete"):
        if found == pafs.FileType.Directory:
            loc.fs.delete_dir_contents(loc.path, missing_dir_ok=True)
            try:
                loc.fs.delete_dir(loc.path)
            except FileNotFoundError:  # a store's implicit folder: no marker object to delete
                pass
        elif found == pafs.FileType.File:
            loc.fs.delete_file(loc.path)


def rename(src: str, dst: str) -> None:
    """Move a file or folder to `dst` (replacing nothing: the caller removes `dst` first). Atomic
    on one local filesystem and on HDFS; on an object store, object by object (see above)."""
    loc = _remote(src)
    if loc is None:
        os.makedirs(os.path.dirname(local_path(dst)) or ".", exist_ok=True)
        os.replace(local_path(src), local_path(dst))
        return
    target = uri.resolve(dst).path
    with uri.user_errors(src, "cannot move"):
        if not uri.is_object_store(loc) or _type(loc, loc.path) == pafs.FileType.File:
            loc.fs.move(loc.path, target)
            return
        infos = loc.fs.get_file_info(pafs.FileSelector(loc.path, recursive=True))
        files = [i.path for i in infos if i.type == pafs.FileType.File]
        loc.fs.create_dir(target)
        moves = [(f, target + f[len(loc.path):]) for f in files]
        with ThreadPoolExecutor(COPY_THREADS) as pool:
            list(pool.map(lambda m: loc.fs.move(*m), moves))
    remove(src)  # what is left: the folder's own marker objects


def list_names(folder: str, suffix: str = "") -> list[str]:
    """Sorted names of the visible files in `folder` that end with `suffix`."""
    loc = _remote(folder)
    if loc is None:
        p = local_path(folder)
        names = [n for n in os.listdir(p) if os.path.isfile(os.path.join(p, n))]
    else:
        with uri.user_errors(folder, "cannot list"):
            infos = loc.fs.get_file_info(pafs.FileSelector(loc.path))
        names = [i.base_name for i in infos if i.type == pafs.FileType.File]
    return sorted(n for n in names if n.endswith(suffix) and not n.startswith((".", "_")))


def makedirs(path: str) -> None:
    loc = _remote(path)
    if loc is None:
        os.makedirs(local_path(path), exist_ok=True)
    else:
        with uri.user_errors(path, "cannot create"):
            loc.fs.create_dir(loc.path)


def temp_name(path: str) -> str:
    """A hidden, unique sibling of `path` to write before renaming into place."""
    folder, name = os.path.split(local_path(path))
    return os.path.join(folder, f".{name}{TMP_MARK}{uuid.uuid4().hex}")


class AtomicFile:
    """The one atomic writer. `stream` is an output stream to write the file's bytes to (pyarrow's
    writers take it as their sink); `commit()` closes it and makes the file appear whole under its
    name, `discard()` leaves nothing. Locally it writes a hidden sibling and renames it; on an
    object store it uploads to the name itself (visible only once complete). A retried task
    rewrites the same name. As a context manager it commits on success and discards on an
    exception."""

    def __init__(self, path: str):
        self._loc = _remote(path)
        if self._loc is None:
            self.path = local_path(path)
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            self.tmp = temp_name(self.path)
            self.stream = pafs.LocalFileSystem().open_output_stream(self.tmp)
        else:
            self.path = path
            with uri.user_errors(path, "cannot write"):
                self.stream = self._loc.fs.open_output_stream(self._loc.path)

    def commit(self) -> None:
        with uri.user_errors(self.path, "cannot write"):
            self.stream.close()
        if self._loc is None:
            os.replace(self.tmp, self.path)

    def discard(self) -> None:
        try:
            self.stream.close()
        except OSError:
            pass
        if self._loc is None:
            if os.path.lexists(self.tmp):
                os.remove(self.tmp)
        else:  # closing completed the upload: take the partial object away again
            remove(self.path)

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def remove_partial_files(folder: str) -> int:
    """Delete the temporary files that failed or killed task attempts left behind; returns how many.
    (Object stores have none: an unfinished upload never becomes an object.)"""
    if not is_local(folder):
        return 0
    p = local_path(folder)
    if not os.path.isdir(p):
        return 0
    leftovers = [n for n in os.listdir(p) if n.startswith(".") and TMP_MARK in n]
    for name in leftovers:
        os.remove(os.path.join(p, name))
    return len(leftovers)


def write_bytes_atomic(path: str, data: bytes) -> None:
    with AtomicFile(path) as f:
        f.stream.write(data)


def write_text_atomic(path: str, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_bytes(path: str) -> bytes:
    loc = _remote(path)
    if loc is None:
        return Path(local_path(path)).read_bytes()
    with uri.user_errors(path, "cannot read"), loc.fs.open_input_stream(loc.path) as f:
        return f.read()


def open_random_access(path: str):
    """A file to read at any offset: memory-mapped where it is local (only the pages read are
    loaded), else a random-access file of its store (ranged reads)."""
    import pyarrow as pa

    loc = _remote(path)
    if loc is None:
        return pa.memory_map(local_path(path), "r")
    with uri.user_errors(path, "cannot read"):
        return loc.fs.open_input_file(loc.path)


def read_json(path: str) -> Any:
    return json.loads(read_bytes(path).decode("utf-8"))


@contextmanager
def local_folder(folder: str) -> Iterator[str]:
    """A local path holding the files of `folder` (itself when it is local; else a temporary copy
    of its files, for libraries that read only local paths, such as transformers)."""
    loc = _remote(folder)
    if loc is None:
        yield local_path(folder)
        return
    with tempfile.TemporaryDirectory(prefix="codecorpus-") as tmp:
        for entry in uri.walk(folder):
            target = Path(tmp, entry.relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(read_bytes(entry.uri))
        yield tmp


@contextmanager
def staged_folder(folder: str) -> Iterator[str]:
    """A local folder to write files into; on leaving, they are copied into `folder` (for
    libraries that write only local paths). Locally it is `folder` itself."""
    if is_local(folder):
        makedirs(folder)
        yield local_path(folder)
        return
    with tempfile.TemporaryDirectory(prefix="codecorpus-") as tmp:
        yield tmp
        for path in sorted(p for p in Path(tmp).rglob("*") if p.is_file()):
            write_bytes_atomic(f"{folder.rstrip('/')}/{path.relative_to(tmp).as_posix()}", path.read_bytes())


def check_writable(root: str) -> None:
    from codecorpus.core.errors import UserError

    probe = f"{root.rstrip('/')}/.write-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if not is_local(root):  # a one-line error naming the root, whatever the store says
        makedirs(root)
        write_bytes_atomic(probe, b"")
        remove(probe)
        return
    p = Path(local_path(root))
    try:
        p.mkdir(parents=True, exist_ok=True)
        Path(local_path(probe)).write_text("")
        Path(local_path(probe)).unlink()
    except OSError as exc:
        raise UserError(f"output folder {root} is not writable: {exc.strerror or exc}") from None


def touch_success(folder: str) -> None:
    """Leave Hadoop's `_SUCCESS` marker in an output folder (Spark writers already do)."""
    marker = f"{folder.rstrip('/')}/_SUCCESS"
    if is_dir(folder) and not exists(marker):
        write_bytes_atomic(marker, b"")
