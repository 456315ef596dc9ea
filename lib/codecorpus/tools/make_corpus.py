"""Build CodeParrot-format shards from source trees (pure standard library: no Spark, no numpy,
so it also runs on the GPU machine).

Each record is one JSON line `{repo_name, path, copies, size, content, license}` with `copies`
and `size` as strings, like the original BigQuery export. Files are assigned to shards by a
hash of their path, so the same trees always give the same shards.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
import sys
import sysconfig
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

log = logging.getLogger("codecorpus")

SHARD_NAME = "file-{:012d}.json.gz"
CODE_SUFFIXES = (".py",)
PROSE_SUFFIXES = (".rst", ".md", ".txt")
PROSE_MIN_CHARS = 200
MAX_FILE_BYTES = 16 * 1024 * 1024


@dataclass
class CorpusSummary:
    files: int = 0
    bytes: int = 0
    shards: int = 0
    non_utf8_files: int = 0
    skipped_unreadable: int = 0
    skipped_too_large: int = 0
    licenses: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["licenses"] = dict(self.licenses.most_common())
        return d


# ---------------------------------------------------------------- licences of installed packages

_CLASSIFIER_TO_ID = [
    ("MIT", "mit"), ("Apache", "apache-2.0"), ("BSD", "bsd-3-clause"), ("ISC", "isc"),
    ("Python Software Foundation", "psf-2.0"), ("Mozilla Public License 2.0", "mpl-2.0"),
    ("GNU Lesser General Public License v3", "lgpl-3.0"), ("GNU Lesser General Public License v2", "lgpl-2.1"),
    ("GNU Library or Lesser", "lgpl-2.1"), ("GNU General Public License v3", "gpl-3.0"),
    ("GNU General Public License v2", "gpl-2.0"), ("GNU Affero", "agpl-3.0"),
    ("The Unlicense", "unlicense"), ("Public Domain", "cc0-1.0"), ("zlib", "zlib"),
]
_TEXT_TO_ID = [
    (r"\bmit\b", "mit"), (r"apache", "apache-2.0"), (r"bsd[- ]?2", "bsd-2-clause"), (r"\bbsd\b", "bsd-3-clause"),
    (r"\bisc\b", "isc"), (r"\bpsf\b|python software foundation", "psf-2.0"), (r"mpl|mozilla", "mpl-2.0"),
    (r"lgpl", "lgpl-3.0"), (r"agpl", "agpl-3.0"), (r"gpl", "gpl-3.0"), (r"unlicense", "unlicense"),
    (r"public domain|cc0", "cc0-1.0"),
]


def license_id(meta) -> str:
    """Map a distribution's metadata to a CodeParrot-style licence id, else 'unknown'."""
    expr = (meta.get("License-Expression") or "").strip()
    short = (meta.get("License") or "").strip()
    for text in (expr, short if len(short) < 100 else ""):
        low = text.lower()
        for pattern, lid in _TEXT_TO_ID:
            if low and re.search(pattern, low):
                return lid
    for classifier in meta.get_all("Classifier") or []:
        if classifier.startswith("License ::"):
            for needle, lid in _CLASSIFIER_TO_ID:
                if needle in classifier:
                    return lid
    return "unknown"


def _installed_licenses() -> dict[str, tuple[str, str]]:
    """top-level import name -> (distribution name, licence id)."""
    from importlib import metadata

    out: dict[str, tuple[str, str]] = {}
    try:
        mapping = metadata.packages_distributions()
    except Exception:  # broken metadata somewhere in site-packages
        mapping = {}
    cache: dict[str, str] = {}
    for top, dists in mapping.items():
        dist = sorted(dists)[0]
        if dist not in cache:
            try:
                cache[dist] = license_id(metadata.metadata(dist))
            except Exception:
                cache[dist] = "unknown"
        out[top] = (dist, cache[dist])
    return out


# ---------------------------------------------------------------- walking source trees

def default_sources() -> list[str]:
    """The running Python's standard library, its site-packages and (in a venv) the base
    installation's site-packages."""
    here = sysconfig.get_paths()
    base = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})
    candidates = [here["stdlib"], here["purelib"], here["platlib"], base["purelib"], base["platlib"]]
    seen: list[str] = []
    for p in candidates:
        if p and os.path.isdir(p) and os.path.realpath(p) not in [os.path.realpath(s) for s in seen]:
            seen.append(p)
    return seen


def _is_site_packages(root: Path) -> bool:
    return root.name in ("site-packages", "dist-packages")


def _repo_for(root: Path, rel: Path, site: bool, stdlib: bool) -> tuple[str, str]:
    top = rel.parts[0] if len(rel.parts) > 1 else rel.stem
    top = top.removesuffix(".py")
    if stdlib:
        return f"python/{top}", "psf-2.0"
    if site:
        return top, ""
    return f"{root.name}/{top}", ""


def iter_files(sources: Iterable[str], suffixes: tuple[str, ...]) -> Iterator[tuple[Path, Path]]:
    """(source root, file) pairs in sorted order; symlinked files are followed, directories not."""
    for src in sources:
        root = Path(src)
        if not root.is_dir():
            raise FileNotFoundError(f"source folder not found: {src}")
        stdlib = os.path.realpath(root) == os.path.realpath(sysconfig.get_paths()["stdlib"])
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            if stdlib:  # the stdlib folder contains site-packages; that is walked as its own source
                dirnames[:] = [d for d in dirnames if d not in ("site-packages", "dist-packages")]
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in sorted(filenames):
                if name.endswith(suffixes):
                    yield root, Path(dirpath) / name


def _read(path: Path, summary: CorpusSummary) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            summary.skipped_too_large += 1
            return None
        raw = path.read_bytes()
    except OSError:
        summary.skipped_unreadable += 1
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        summary.non_utf8_files += 1
        return raw.decode("utf-8", errors="replace")


def collect_code(sources: Iterable[str]) -> tuple[list[dict], CorpusSummary]:
    summary = CorpusSummary()
    licenses = _installed_licenses()
    stdlib_path = os.path.realpath(sysconfig.get_paths()["stdlib"])
    records = []
    for root, path in iter_files(sources, CODE_SUFFIXES):
        content = _read(path, summary)
        if content is None:
            continue
        rel = path.relative_to(root)
        site = _is_site_packages(root)
        repo, lic = _repo_for(root, rel, site, os.path.realpath(root) == stdlib_path)
        if not lic:
            top = rel.parts[0].removesuffix(".py")
            dist, lic = licenses.get(top, (None, "unknown"))
            if dist and site:
                repo = dist
        records.append({"repo_name": repo, "path": str(rel), "content": content, "license": lic})
    return records, summary


def _doc_texts_from_metadata() -> Iterator[tuple[str, str, str]]:
    from importlib import metadata

    for dist in sorted(metadata.distributions(), key=lambda d: (d.metadata.get("Name") or "").lower()):
        name = dist.metadata.get("Name") or "unknown"
        body = dist.metadata.get_payload() or dist.metadata.get("Description") or ""
        if isinstance(body, str) and len(body) >= PROSE_MIN_CHARS:
            yield name, f"{name}/METADATA", body


def collect_prose(sources: Iterable[str], system: bool = True) -> tuple[list[dict], CorpusSummary]:
    """English-ish documentation text: package descriptions, .rst/.md/.txt files, and the
    README/NEWS/.txt/.md/.rst files of /usr/share/doc (plain or .gz). Only text that reads as
    prose is kept: no NUL, few undecodable bytes, mostly letters among the non-space characters
    (this drops PostScript, PDF, JSON and data tables that share those suffixes). Identical
    texts are kept once (the first in sorted walk order), as many Debian packages ship the same
    changelog; changelogs themselves are left out (commit logs, not prose). `system=False`
    reads only `sources` (no package metadata, no /usr/share/doc)."""
    summary = CorpusSummary()
    records = []
    seen: set[bytes] = set()

    def keep(text: str) -> bool:
        if len(text) < PROSE_MIN_CHARS or "\x00" in text or text.count("\ufffd") > len(text) // 100:
            return False
        visible = [c for c in text[:200_000] if not c.isspace()]
        letters = sum(c.isalpha() for c in visible)
        if not visible or letters < 0.6 * len(visible):
            return False
        digest = hashlib.md5(text.encode("utf-8", "surrogatepass")).digest()
        if digest in seen:
            return False
        seen.add(digest)
        return True

    for name, path, body in _doc_texts_from_metadata() if system else []:
        if keep(body):
            records.append({"repo_name": name, "path": path, "content": body, "license": "unknown"})
    for root, path in iter_files(sources, PROSE_SUFFIXES):
        content = _read(path, summary)
        if content is None or not keep(content):
            continue
        rel = path.relative_to(root)
        records.append({"repo_name": f"{root.name}/{rel.parts[0]}", "path": str(rel),
                        "content": content, "license": "unknown"})
    doc = Path("/usr/share/doc")
    doc_names = re.compile(r"^(readme|news)([._-].*)?$|\.(txt|md|rst)$", re.IGNORECASE)
    if system and doc.is_dir():
        for dirpath, dirnames, filenames in os.walk(doc):
            dirnames.sort()
            for fname in sorted(filenames):
                p = Path(dirpath) / fname
                plain = fname[:-3] if fname.endswith(".gz") else fname
                if not doc_names.search(plain) or plain.lower().startswith("changelog"):
                    continue
                try:
                    raw = gzip.decompress(p.read_bytes()) if fname.endswith(".gz") else p.read_bytes()
                except (OSError, EOFError, gzip.BadGzipFile):
                    summary.skipped_unreadable += 1
                    continue
                if len(raw) > MAX_FILE_BYTES:
                    summary.skipped_too_large += 1
                    continue
                text = raw.decode("utf-8", errors="replace")
                if keep(text):
                    rel = p.relative_to(doc)
                    records.append({"repo_name": f"debian/{rel.parts[0]}", "path": str(rel),
                                    "content": text, "license": "unknown"})
    return records, summary


def shard_of(repo_name: str, path: str, shards: int) -> int:
    digest = hashlib.blake2b(f"{repo_name}\0{path}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def write_shards(records: list[dict], output: str, shards: int, summary: CorpusSummary) -> CorpusSummary:
    if shards < 1:
        raise ValueError("shards must be at least 1")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("file-*.json.gz"):
        old.unlink()
    copies = Counter(hashlib.md5(r["content"].encode("utf-8", "surrogatepass")).digest() for r in records)
    buckets: list[list[dict]] = [[] for _ in range(shards)]
    for r in records:
        buckets[shard_of(r["repo_name"], r["path"], shards)].append(r)
    for i, bucket in enumerate(buckets):
        bucket.sort(key=lambda r: (r["repo_name"], r["path"]))
        # mtime=0 so identical input gives byte-identical shards
        with open(out / SHARD_NAME.format(i), "wb") as raw, \
                gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6) as gz:
            for r in bucket:
                data = r["content"].encode("utf-8", "surrogatepass")
                line = {
                    "repo_name": r["repo_name"], "path": r["path"],
                    "copies": str(copies[hashlib.md5(data).digest()]), "size": str(len(data)),
                    "content": r["content"], "license": r["license"],
                }
                gz.write(json.dumps(line, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n")
                summary.files += 1
                summary.bytes += len(data)
                summary.licenses[r["license"]] += 1
    summary.shards = shards
    (out / "_manifest.json").write_text(json.dumps(summary.to_dict(), indent=2, sort_keys=True) + "\n")
    return summary


def make_corpus(sources: list[str] | None, output: str, shards: int = 184, kind: str = "code",
                limit: int | None = None) -> CorpusSummary:
    sources = sources or default_sources()
    if kind == "code":
        records, summary = collect_code(sources)
    elif kind == "prose":
        records, summary = collect_prose(sources)
    else:
        raise ValueError(f"kind must be code or prose, not {kind!r}")
    if limit is not None:
        records = records[:limit]
    return write_shards(records, output, shards, summary)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Build CodeParrot-format shards from source trees.")
    ap.add_argument("--source", action="append", help="source folder (repeatable); default: "
                    "this Python's standard library and site-packages")
    ap.add_argument("--output", required=True, help="folder for file-*.json.gz shards")
    ap.add_argument("--shards", type=int, default=184)
    ap.add_argument("--kind", choices=["code", "prose"], default="code")
    ap.add_argument("--limit", type=int, default=None, help="keep only the first N files (sorted)")
    args = ap.parse_args(argv)
    try:
        summary = make_corpus(args.source, args.output, args.shards, args.kind, args.limit)
    except (FileNotFoundError, ValueError) as exc:
        print(f"make_corpus: error: {exc}", file=sys.stderr)
        return 2
    print(f"make_corpus: {summary.files:,} files, {summary.bytes / 1e6:.1f} MB in {summary.shards} shards "
          f"-> {args.output} (non-UTF-8 decoded with replacement: {summary.non_utf8_files}, "
          f"unreadable: {summary.skipped_unreadable}, too large: {summary.skipped_too_large})")
    return 0
