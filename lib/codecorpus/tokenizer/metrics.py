"""Tokenizer quality figures, as pure functions over texts and their encodings.

A *word* is a maximal run of word characters or a maximal run of other non-space characters:
the regex `\\w+|[^\\w\\s]+` (Unicode `\\w`: letters, digits, underscore). It does not depend on any
tokenizer, so every tokenizer is judged against the same words. In `self.x += 1` the words are
`self`, `.`, `x`, `+=`, `1`.

A token *belongs to* a word when their character spans overlap (tokenizers give character
offsets; a byte-level token inside a multi-byte character spans that character). A word's
token count is the number of tokens that belong to it; a token that spans two words counts
for both, a whitespace-only token for none.

- fertility: mean tokens per word;
- continued_words: share of words with 2 or more tokens;
- chars_per_token, bytes_per_token (UTF-8): text size over token count;
- unknown_share: share of tokens that are the model's unknown token;
- partial_char_share: share of tokens whose bytes are not whole UTF-8 characters (byte-level
  pieces of a character the vocabulary lacks, or `<0xNN>` byte-fallback tokens);
- vocab_unused_share: share of the (non-special) vocabulary never produced on the texts;
- vocab_rare_share: share of the vocabulary produced 1 to RARE_BELOW - 1 times.
"""
from __future__ import annotations

import keyword
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

WORD_RE = re.compile(r"\w+|[^\w\s]+")
RARE_BELOW = 10
_BYTE_FALLBACK = re.compile(r"<0x[0-9A-Fa-f]{2}>")

# Python's keywords and soft keywords (3.11: match, case, _), as the book checks them.
KEYWORDS = sorted(set(keyword.kwlist) | set(keyword.softkwlist))

# A fixed set of snippets whose token counts are compared ("sequence length").
SNIPPETS: dict[str, str] = {
    "say_hello": 'def say_hello():\n    print("Hello, World!")\n# Print it\nsay_hello()\n',
    "class": ("class Point:\n    \"\"\"A point in the plane.\"\"\"\n\n    def __init__(self, x, y):\n"
              "        self.x = x\n        self.y = y\n\n    def norm(self):\n"
              "        return (self.x ** 2 + self.y ** 2) ** 0.5\n"),
    "imports": "import os\nimport numpy as np\nfrom collections import defaultdict\n",
    "loop": "for i in range(10):\n    if i % 2 == 0:\n        continue\n    total += i\n",
    "prose": "The quick brown fox jumps over the lazy dog, and then it goes to sleep.\n",
}
SAMPLE_SNIPPET = "say_hello"


def word_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in WORD_RE.finditer(text)]


def tokens_per_word(words: Sequence[tuple[int, int]], tokens: Sequence[tuple[int, int]]) -> list[int]:
    """For each word span, how many token spans overlap it (both lists sorted by start)."""
    counts = []
    first = 0  # first token that may still reach the current word
    for ws, we in words:
        while first < len(tokens) and tokens[first][1] <= ws:
            first += 1
        n = 0
        j = first
        while j < len(tokens) and tokens[j][0] < we:
            if tokens[j][1] > ws and tokens[j][1] > tokens[j][0]:
                n += 1
            j += 1
        counts.append(n)
    return counts


def is_partial_char(token_bytes: bytes | None, token: str) -> bool:
    """A token standing for bytes that are not whole UTF-8 characters."""
    if _BYTE_FALLBACK.fullmatch(token):
        return True
    if token_bytes is None:
        return False
    try:
        token_bytes.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@dataclass
class Tally:
    """Running sums over many texts for one tokenizer."""
    texts: int = 0
    chars: int = 0
    bytes: int = 0
    tokens: int = 0
    words: int = 0
    word_tokens: int = 0
    continued_words: int = 0
    unknown: int = 0
    partial_chars: int = 0
    id_counts: Counter = field(default_factory=Counter)

    def add(self, text: str, ids: Sequence[int], offsets: Sequence[tuple[int, int]], *,
            unknown_id: int | None = None, partial_ids: frozenset[int] = frozenset()) -> None:
        self.texts += 1
        self.chars += len(text)
        self.bytes += len(text.encode("utf-8", "surrogatepass"))
        self.tokens += len(ids)
        per_word = tokens_per_word(word_spans(text), offsets)
        self.words += len(per_word)
        self.word_tokens += sum(per_word)
        self.continued_words += sum(1 for n in per_word if n >= 2)
        self.id_counts.update(ids)
        if unknown_id is not None:
            self.unknown += sum(1 for i in ids if i == unknown_id)
        if partial_ids:
            self.partial_chars += sum(1 for i in ids if i in partial_ids)


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


def summarize(tally: Tally, vocab_ids: Sequence[int], special_ids: Sequence[int] = ()) -> dict:
    """The figures of one tokenizer from its tally; `vocab_ids` are all ids of its vocabulary."""
    special = set(special_ids)
    vocab = [i for i in vocab_ids if i not in special]
    unused = sum(1 for i in vocab if tally.id_counts.get(i, 0) == 0)
    rare = sum(1 for i in vocab if 0 < tally.id_counts.get(i, 0) < RARE_BELOW)
    return {
        "texts": tally.texts, "chars": tally.chars, "bytes": tally.bytes, "tokens": tally.tokens,
        "words": tally.words,
        "fertility": _ratio(tally.word_tokens, tally.words),
        "continued_words": _ratio(tally.continued_words, tally.words),
        "chars_per_token": _ratio(tally.chars, tally.tokens),
        "bytes_per_token": _ratio(tally.bytes, tally.tokens),
        "unknown_share": _ratio(tally.unknown, tally.tokens),
        "partial_char_share": _ratio(tally.partial_chars, tally.tokens),
        "vocab_unused_share": _ratio(unused, len(vocab)),
        "vocab_rare_share": _ratio(rare, len(vocab)),
    }
