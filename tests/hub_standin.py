"""A stand-in for the Hugging Face Hub's HTTP API, serving dataset repositories from a folder.

The Hub itself cannot be reached from this machine, so ingest's `hf://` input is tested against
this server, with the real `huggingface_hub` client (its `HfFileSystem`) on the other side. It
answers the three calls that client makes to list and stream a dataset repository's files:

    GET /api/datasets/<owner>/<name>[/revision/<rev>]          repository info
    GET /api/datasets/<owner>/<name>/tree/<rev>[/<path>]       a folder's entries (?recursive=true)
    GET /datasets/<owner>/<name>/resolve/<rev>/<path>          a file's bytes (Range: bytes=N-)

`<root>/<owner>/<name>/` is a repository; every revision name serves the same files. With
`--token T`, a request without `Authorization: Bearer T` gets 401, as a private repository does.

    python tests/hub_standin.py ROOT --port 8080 [--token T]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

COMMIT = "0" * 40
_INFO = re.compile(r"^/api/datasets/([^/]+/[^/]+)(?:/revision/[^/]+)?$")
_TREE = re.compile(r"^/api/datasets/([^/]+/[^/]+)/tree/[^/]+(?:/(.*))?$")
_FILE = re.compile(r"^/datasets/([^/]+/[^/]+)/resolve/[^/]+/(.+)$")


def make_handler(root: Path, token: str | None):
    class Hub(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            url = urlsplit(self.path)
            path = unquote(url.path)
            if token is not None and self.headers.get("Authorization") != f"Bearer {token}":
                return self._json(401, {"error": "Invalid credentials in Authorization header"})
            for pattern, answer in ((_INFO, self._info), (_TREE, self._tree), (_FILE, self._file)):
                m = pattern.match(path)
                if m:
                    repo = root / m.group(1)
                    if not repo.is_dir():
                        return self._json(404, {"error": "Repository not found"}, code="RepoNotFound")
                    return answer(repo, *m.groups()[1:], query=url.query)
            self._json(404, {"error": "not served here"})

        def _info(self, repo: Path, query: str) -> None:
            self._json(200, {"id": f"{repo.parent.name}/{repo.name}", "sha": COMMIT, "private": False})

        def _tree(self, repo: Path, sub: str | None, query: str) -> None:
            folder = repo / (sub or "")
            if not folder.is_dir():
                return self._json(404, {"error": "Entry not found"}, code="EntryNotFound")
            found = folder.rglob("*") if "recursive=true" in query else folder.iterdir()
            self._json(200, [_entry(p, repo) for p in sorted(found)])

        def _file(self, repo: Path, rel: str, query: str) -> None:
            path = repo / rel
            if not path.is_file():
                return self._json(404, {"error": "Entry not found"}, code="EntryNotFound")
            data = path.read_bytes()
            start = int(m.group(1)) if (m := re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))) else 0
            if start >= len(data) > 0:
                return self._json(416, {"error": "Range not satisfiable"})
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
            self.send_header("X-Repo-Commit", COMMIT)
            self.end_headers()
            self.wfile.write(data[start:])

        def _json(self, status: int, body, code: str | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if code:
                self.send_header("X-Error-Code", code)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    return Hub


def _entry(path: Path, repo: Path) -> dict:
    rel = path.relative_to(repo).as_posix()
    if path.is_dir():
        return {"type": "directory", "oid": hashlib.sha1(rel.encode()).hexdigest(), "size": 0, "path": rel}
    return {"type": "file", "oid": hashlib.sha1(path.read_bytes()).hexdigest(), "size": path.stat().st_size,
            "path": rel}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token")
    args = ap.parse_args()
    ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.root, args.token)).serve_forever()


if __name__ == "__main__":
    main()
