"""The one way anything loads a tokenizer.

- `load_tokenizer(folder)`: a transformers fast tokenizer from a Hugging Face tokenizer folder
  (what train_tokenizer writes), or a Hub id where the Hub can be reached;
- `tokenizer_json(path)`: the raw tokenizer.json text, for shipping to executors and hashing;
- `backend_from_json(text)`: the `tokenizers.Tokenizer` built from that text, once per process
  and tokenizer, with truncation and padding off (a saved setting would silently cut files).
"""
from __future__ import annotations

import hashlib
import json
import os

from codecorpus.core.errors import UserError
from codecorpus.core.latest import Latest
from codecorpus.io import fs


def load_tokenizer(name_or_path: str, *, allow_hub: bool = False):
    """A transformers fast tokenizer. A folder must hold tokenizer.json (a fast tokenizer: the
    metrics need offsets and batch encoding); a Hub id is tried only when `allow_hub`."""
    from transformers import AutoTokenizer

    local = fs.local_path(name_or_path)
    if fs.is_dir(name_or_path):
        if not fs.exists(f"{name_or_path.rstrip('/')}/tokenizer.json"):
            raise UserError(f"tokenizer folder {name_or_path} has no tokenizer.json "
                            "(expected a folder written by train_tokenizer or save_pretrained)")
        try:
            with fs.local_folder(name_or_path) as folder:
                return AutoTokenizer.from_pretrained(folder, local_files_only=True)
        except Exception as exc:  # a broken or foreign file: say which folder
            raise UserError(f"cannot load tokenizer from {name_or_path}: {type(exc).__name__}: {exc}") from None
    if not allow_hub or not fs.is_local(name_or_path) or os.path.isabs(local) or local.startswith("."):
        raise UserError(f"tokenizer folder not found: {name_or_path}")
    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except Exception as exc:
        raise UserError(f"cannot load tokenizer {name_or_path!r} (not a local folder; from the Hub: "
                        f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None


def tokenizer_json(path: str, what: str = "tokenizer") -> str:
    """The raw tokenizer.json text, from the file or from a tokenizer folder holding it; `what`
    names the setting or input in the error."""
    file = f"{path.rstrip('/')}/tokenizer.json" if fs.is_dir(path) else path
    if not fs.exists(file):
        raise UserError(f"{what}: no tokenizer.json at {path} (run the train_tokenizer stage first, "
                        "or name a folder written by save_pretrained)")
    return fs.read_bytes(file).decode("utf-8")


_BACKEND = Latest()


def backend_from_json(text: str):
    """A `tokenizers.Tokenizer` for this JSON text, built once per process and reused across
    tasks and batches (only the latest one is kept)."""
    def build():
        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(text)
        tok.no_truncation()
        tok.no_padding()
        return tok

    return _BACKEND.get(hashlib.sha256(text.encode("utf-8")).hexdigest(), build)


def backend(tokenizer):
    """The `tokenizers.Tokenizer` inside a fast tokenizer (fast batch encoding with offsets)."""
    inner = getattr(tokenizer, "backend_tokenizer", None)
    if inner is None:
        raise UserError(f"{type(tokenizer).__name__} is not a fast tokenizer; need one with tokenizer.json")
    return inner


def is_byte_level(tokenizer) -> bool:
    """True when the pipeline has a ByteLevel pre-tokenizer or decoder (tokens are byte symbols)."""
    data = json.loads(backend(tokenizer).to_str())

    def has(node) -> bool:
        if not isinstance(node, dict):
            return False
        if node.get("type") == "ByteLevel":
            return True
        return any(has(n) for n in node.get("pretokenizers", []) + node.get("decoders", []))

    return has(data.get("pre_tokenizer")) or has(data.get("decoder"))
