"""Paths and URIs -> pyarrow filesystems: the one place that knows URI schemes.

Accepted: a plain path (relative or absolute), file://, s3:// (s3a:// and s3n://, Hadoop's
spellings, are aliases), gs:// (gcs://), hdfs:// and viewfs://, wherever this pyarrow build has
that filesystem; and, to read from only (an input, never a run root), hf:// (a Hugging Face Hub
repository, `hf://datasets/<owner>/<name>[@<revision>][/<path>]`, through huggingface_hub's
fsspec filesystem, streamed: HF_TOKEN or the cached login, HF_ENDPOINT for another Hub).
Object-store settings come only from the standard environment, read each time a filesystem is
made: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (an S3-compatible store),
AWS_REGION or AWS_DEFAULT_REGION, and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
AWS_SESSION_TOKEN (else the AWS SDK's own chain: config files, instance roles); Google's and
Hadoop's client libraries read their own (for gs://, STORAGE_EMULATOR_HOST points at a local
emulator, as for Google's libraries). Nothing here logs, returns or puts in a message a
credential. What a user can fix (no such path, no access, a scheme this build lacks) is raised
as a one-line `UserError`.
"""
from __future__ import annotations

import fnmatch
import functools
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import pyarrow.fs as pafs

from codecorpus.core.errors import UserError

S3_SCHEMES = ("s3", "s3a", "s3n")
OTHER_SCHEMES = ("gs", "gcs", "hdfs", "viewfs")
RUN_ROOT_SCHEMES = ("", "file", *S3_SCHEMES, *OTHER_SCHEMES)
INPUT_ONLY_SCHEMES = ("hf",)  # a Hub repository is read, never written by a stage
HIDDEN_PREFIXES = ("_", ".")  # Hadoop's rule: `_SUCCESS`, `_temporary/`, `.crc` are not data
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_WILDCARD = re.compile(r"[*?\[]")
_HF_REPO = re.compile(r"^(datasets|models|spaces)/[^/@]+/[^/@]+(@[^/]+)?(/.*)?$")


class Location(NamedTuple):
    fs: pafs.FileSystem
    path: str    # the path inside `fs`
    prefix: str  # what makes a path of `fs` a URI again: "" (local), "s3://", "hdfs://host:8020"

    def uri(self, path: str) -> str:
        return self.prefix + path


class FileEntry(NamedTuple):
    uri: str       # a plain absolute path for local files, else scheme://...
    size: int
    relative: str  # its path below the folder that was listed (for the hidden-name rule)


def local_path(path: str) -> str:
    """A plain path without its `file:` scheme (other schemes are left as they are)."""
    if path.startswith("file://"):
        return path[len("file://"):]
    if path.startswith("file:"):
        return path[len("file:"):]
    return path


def scheme_of(uri: str) -> str:
    m = _SCHEME.match(uri)
    if m:
        return m.group(1).lower()
    return "file" if uri.startswith("file:") else ""


def is_local(uri: str) -> bool:
    return scheme_of(uri) in ("", "file")


def resolve(uri: str) -> Location:
    """The filesystem that holds `uri` and the path inside it."""
    scheme = scheme_of(uri)
    if scheme in ("", "file"):
        return Location(pafs.LocalFileSystem(), os.path.abspath(local_path(uri)), "")
    if scheme in (*S3_SCHEMES, "gs", "gcs") and "@" in uri.split("://", 1)[1].split("/", 1)[0]:
        # The URI is not echoed: what is before the @ would be a secret.
        raise UserError(f"credentials in a {scheme}:// URI are not accepted: set them in the environment "
                        "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; for gs://, GOOGLE_APPLICATION_CREDENTIALS)")
    if scheme in S3_SCHEMES:
        path = uri.split("://", 1)[1].strip("/")
        with user_errors(uri, "cannot reach"):
            return Location(pafs.S3FileSystem(**_s3_options(path.split("/", 1)[0])), path, "s3://")
    if scheme in ("gs", "gcs") and os.environ.get("STORAGE_EMULATOR_HOST"):
        path = uri.split("://", 1)[1].strip("/")
        with user_errors(uri, "cannot reach"):
            return Location(pafs.GcsFileSystem(**_gcs_emulator_options()), path, "gs://")
    if scheme == "hf":
        path = uri.split("://", 1)[1].strip("/")
        if not _HF_REPO.match(path):
            raise UserError(f"{uri}: an hf:// input is a repository, or a folder or glob in it: "
                            "hf://datasets/<owner>/<name>[@<revision>][/<path>]")
        with user_errors(uri, "cannot open"):
            return Location(_hf_filesystem(), path, "hf://")
    if scheme in OTHER_SCHEMES:
        with user_errors(uri, "cannot open"):
            filesystem, path = pafs.FileSystem.from_uri(uri)
        netloc = uri.split("://", 1)[1].split("/", 1)[0]
        return Location(filesystem, path, f"{scheme}://" if scheme in ("gs", "gcs") else f"{scheme}://{netloc}")
    raise UserError(f"unsupported URI scheme {scheme}:// in {uri} (use a path, file://, s3://, gs://, hdfs:// "
                    "or, for an input, hf://)")


def is_object_store(loc: Location) -> bool:
    """Whether `loc` has no rename (S3, GCS): folders are moved object by object."""
    return loc.prefix in ("s3://", "gs://", "gcs://")


def open_input(uri: str):
    """A sequential input stream of the file's raw bytes (no decompression: callers decide)."""
    loc = resolve(uri)
    return loc.fs.open_input_stream(loc.path, compression=None)


def kind(uri: str) -> str:
    """"file", "dir" or "missing"."""
    loc = resolve(uri)
    with user_errors(uri, "cannot read"):
        info = loc.fs.get_file_info(loc.path)
    return {pafs.FileType.File: "file", pafs.FileType.Directory: "dir"}.get(info.type, "missing")


def file_entry(uri: str) -> FileEntry:
    """One file, its URI normalised (s3a:// -> s3://, a local path made absolute)."""
    loc = resolve(uri)
    with user_errors(uri, "cannot read"):
        info = loc.fs.get_file_info(loc.path)
    return FileEntry(loc.uri(info.path), info.size, info.base_name)


def walk(uri: str) -> list[FileEntry]:
    """Every file below a folder, recursively, sorted."""
    loc = resolve(uri)
    with user_errors(uri, "cannot list"):
        infos = loc.fs.get_file_info(pafs.FileSelector(loc.path, recursive=True))
    base = loc.path.rstrip("/")
    return sorted(FileEntry(loc.uri(i.path), i.size, i.path[len(base):].lstrip("/"))
                  for i in infos if i.type == pafs.FileType.File)


def glob(pattern: str) -> list[FileEntry]:
    """Files whose path matches a shell pattern (`*`, `?`, `[...]` within one path component,
    as the shell and Python's glob match them), sorted."""
    loc = resolve(pattern)
    parts = loc.path.split("/")
    first = next(i for i, p in enumerate(parts) if _WILDCARD.search(p))
    base = "/".join(parts[:first]) or "/"
    if kind(loc.uri(base)) != "dir":
        return []
    entries = walk(loc.uri(base))
    return [e for e in entries if _matches(parts[first:], e.relative.split("/"))]


def has_wildcard(uri: str) -> bool:
    return bool(_WILDCARD.search(uri.split("://", 1)[-1]))


def is_hidden(relative: str) -> bool:
    return any(part.startswith(HIDDEN_PREFIXES) for part in relative.split("/"))


def _matches(pattern_parts: list[str], path_parts: list[str]) -> bool:
    return len(pattern_parts) == len(path_parts) and all(
        fnmatch.fnmatchcase(name, pat) for pat, name in zip(pattern_parts, path_parts))


# ------------------------------------------------------------------------------------------ S3

def _s3_options(bucket: str) -> dict:
    """S3FileSystem arguments from the standard environment. Holds secrets: never log it."""
    env = os.environ
    opts: dict = {}
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        scheme, _, rest = endpoint.partition("://") if "://" in endpoint else ("https", "", endpoint)
        opts.update(endpoint_override=rest.rstrip("/"), scheme=scheme)
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if not region and not endpoint and bucket:
        region = _bucket_region(bucket)  # AWS itself: ask where the bucket lives
    if region:
        opts["region"] = region
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        opts.update(access_key=env["AWS_ACCESS_KEY_ID"], secret_key=env["AWS_SECRET_ACCESS_KEY"],
                    session_token=env.get("AWS_SESSION_TOKEN"))
    return opts


@functools.lru_cache(maxsize=64)
def _bucket_region(bucket: str) -> str | None:
    try:
        return pafs.resolve_s3_region(bucket)
    except (OSError, ValueError):
        return None  # the SDK's default; a missing bucket is reported by the call that needs it


# ------------------------------------------------------------------------------------------ GCS

def _gcs_emulator_options() -> dict:
    """GcsFileSystem arguments for STORAGE_EMULATOR_HOST, the variable Google's own client
    libraries read to talk to a local GCS emulator (no credentials there). Without it, gs:// uses
    Google's default chain (GOOGLE_APPLICATION_CREDENTIALS, the VM's service account)."""
    import datetime

    host = os.environ["STORAGE_EMULATOR_HOST"]
    scheme, _, rest = host.partition("://") if "://" in host else ("http", "", host)
    return {"anonymous": True, "endpoint_override": rest.rstrip("/"), "scheme": scheme,
            "retry_time_limit": datetime.timedelta(seconds=10)}


# ------------------------------------------------------------------------------------------ Hub

def _hf_filesystem() -> pafs.FileSystem:
    """huggingface_hub's HfFileSystem as a pyarrow filesystem. Files are opened as streams
    (block_size=0: one GET read front to back, no ranged re-reads), which is how ingest reads
    a shard. The endpoint and token are read from the environment here, each time, rather than
    from what huggingface_hub read when it was imported."""
    from huggingface_hub import HfFileSystem

    env = os.environ
    hub = HfFileSystem(endpoint=env.get("HF_ENDPOINT") or None, token=env.get("HF_TOKEN") or None, block_size=0)
    return pafs.PyFileSystem(pafs.FSSpecHandler(hub))


# -------------------------------------------------------------------------------------- errors

@contextmanager
def user_errors(uri: str, doing: str) -> Iterator[None]:
    """Storage errors as one line naming the URI (the SDK's messages hold no secrets)."""
    import pyarrow as pa

    try:
        yield
    except (OSError, pa.ArrowException, ImportError) as exc:
        text = " ".join(str(exc).split()).replace(" To create buckets, enable the allow_bucket_creation option.", "")
        text = text.split(" For more information check:")[0][:400]  # huggingface_hub's pointer to MDN
        if any(k in text for k in ("ACCESS_DENIED", "INVALID_ACCESS_KEY", "SIGNATURE_DOES_NOT_MATCH")):
            text += " (check the credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, and the bucket's policy)"
        if uri.startswith("hf://") and ("401" in text or "403" in text):
            text += " (check HF_TOKEN, or `hf auth login`, and your access to the repository)"
        raise UserError(f"{doing} {uri}: {text}") from None
