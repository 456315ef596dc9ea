"""The byte -> printable symbol table of byte-level BPE (GPT-2's `bytes_to_unicode`).

Byte-level tokenizers work on bytes but the `tokenizers` models work on strings, so every byte
is shown as one printable Unicode character: bytes that already print as themselves in Latin-1
(`!`..`~`, `¡`..`¬`, `®`..`ÿ`) keep their code point; the other 68 (controls, space, soft
hyphen, ...) take the code points 256, 257, ... in byte order. So space is `Ġ` (U+0120),
newline `Ċ` (U+010A), carriage return `č` (U+010D), tab `ĉ` (U+0109).
"""
from __future__ import annotations

from functools import lru_cache


def _prints_as_itself(b: int) -> bool:
    return 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """byte value (0..255) -> the one-character string that stands for it."""
    table: dict[int, str] = {}
    shifted = 0
    for b in range(256):
        if _prints_as_itself(b):
            table[b] = chr(b)
        else:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


@lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    return {sym: b for b, sym in bytes_to_unicode().items()}


def alphabet() -> list[str]:
    """The 256 symbols, in byte order: the initial alphabet of a byte-level trainer."""
    table = bytes_to_unicode()
    return [table[b] for b in range(256)]


def symbols_to_bytes(token: str) -> bytes | None:
    """The bytes a byte-level token stands for; None when it has a symbol outside the table."""
    inverse = unicode_to_bytes()
    try:
        return bytes(inverse[c] for c in token)
    except KeyError:
        return None


def format_table(columns: int = 8) -> str:
    """The table as text, `byte  hex  symbol` cells, `columns` cells a line (for --bytemap)."""
    table = bytes_to_unicode()
    cells = [f"{b:3d} {b:02x} {table[b]}" for b in range(256)]
    lines = ["  ".join(cells[i:i + columns]) for i in range(0, 256, columns)]
    moved = sum(1 for b in range(256) if not _prints_as_itself(b))
    return "\n".join(lines) + f"\n\n{256 - moved} bytes print as themselves; {moved} are shifted to U+0100.."
