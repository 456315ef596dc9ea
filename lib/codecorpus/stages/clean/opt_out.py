"""Opt-out: files whose authors asked to be left out, named by repository or by path glob.

The list is a UTF-8 text file, one entry a line. Surrounding whitespace is stripped; blank lines
and lines whose first character is `#` are ignored (a `#` later in a line is part of it).
- `owner/name`: every file of that repository (a trailing `/` changes nothing).
- `owner/name/<glob>`: the files of that repository whose `path` matches the glob.
The repository is the first two `/`-separated parts (GitHub's owner/name). A one-part line
(`numpy`) names a repository without an owner, as make_corpus names site-packages; such a
repository can only be opted out whole. Repository names are exact (no glob characters, an
error otherwise) and compared lower-cased, as GitHub treats them; paths are case-sensitive, as
git's are.

The glob is matched against the whole `path` (relative, no leading `/`):
- `*` is any run of characters other than `/`: it stays in one directory (`tests/*.py` matches
  `tests/a.py`, not `tests/unit/a.py`), as in gitignore and shell globs, unlike `fnmatch`;
- `**` as a whole component crosses directories: `**/` is zero or more directories
  (`**/conftest.py` matches `conftest.py` and `a/b/conftest.py`), a final `/**` everything
  below; elsewhere (`a**b`) it is `*`;
- `?` is one character other than `/`; `[abc]`, `[a-z]`, `[!abc]` (or `[^abc]`) one character
  in (not in) the set, never `/`; a `[` without its `]` is literal. There are no backslash
  escapes: `[*]` matches a literal `*`;
- a glob ending in `/` is a directory: everything below it (`docs/` is `docs/**`);
- every other character matches itself.

In Spark SQL: whole repositories with `isin` (Spark turns a long list into a hash-set lookup);
the globs become one Java regex over `lower(repo_name) || '\\0' || path` with each repository's
globs grouped behind it, tried only on rows of a repository that has globs. Nothing runs in
Python per row.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F

from codecorpus.core.errors import UserError

_GLOB_CHARS = "*?["
_SEPARATOR = "\x00"  # between repository and path in the string the regex sees


@dataclass(frozen=True)
class OptOut:
    repos: tuple[str, ...]                          # whole repositories, lower-cased, sorted
    globs: tuple[tuple[str, tuple[str, ...]], ...]  # (repository, its path globs), sorted
    lines: int = 0                                   # lines in the file (comments included)

    @property
    def n_globs(self) -> int:
        return sum(len(g) for _, g in self.globs)


def parse(text: str, source: str) -> OptOut:
    """The entries of an opt-out file; `source` names it in errors (line numbers from 1)."""
    repos: set[str] = set()
    globs: dict[str, set[str]] = {}
    lines = text.splitlines()
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split("/")
        repo, rest = "/".join(parts[:2]).lower(), "/".join(parts[2:])
        if not all(parts[:2]) or any(c in repo for c in _GLOB_CHARS):
            raise UserError(f"{source} line {number}: {line!r}: expected owner/name or "
                            "owner/name/<path glob> (the repository name is exact)")
        if rest:
            globs.setdefault(repo, set()).add(rest)
        else:
            repos.add(repo)
    kept = {r: tuple(sorted(g)) for r, g in globs.items() if r not in repos}  # whole repo wins
    return OptOut(tuple(sorted(repos)), tuple(sorted(kept.items())), len(lines))


def _literal(ch: str) -> str:
    # A backslash before any ASCII character that is not a letter or digit is a literal in both
    # Java's and Python's regex syntax; letters, digits and non-ASCII need none.
    return "\\" + ch if ch.isascii() and not ch.isalnum() else ch


def _char_set(glob: str, start: int) -> tuple[str, int] | None:
    """The regex of the set that opens at glob[start] ("["), and the index after it; None when
    it is not closed (then "[" is a literal)."""
    i = start + 1
    negate = i < len(glob) and glob[i] in "!^"
    i += negate
    end = glob.find("]", i + 1)  # a "]" right after "[" or "[!" belongs to the set
    if end < 0:
        return None
    body = glob[i:end]
    # "-" between two characters is a range; at either end, and every other character, literal.
    out = "".join(ch if ch == "-" and 0 < k < len(body) - 1 else _literal(ch) for k, ch in enumerate(body))
    return ("[^/" + out + "]" if negate else "(?!/)[" + out + "]"), end + 1


def _component(part: str) -> str:
    out, i = [], 0
    while i < len(part):
        ch = part[i]
        if ch == "*":
            while i < len(part) and part[i] == "*":  # a run of stars is one
                i += 1
            out.append("[^/]*")
            continue
        if ch == "?":
            out.append("[^/]")
        elif ch == "[" and (found := _char_set(part, i)) is not None:
            out.append(found[0])
            i = found[1]
            continue
        else:
            out.append(_literal(ch))
        i += 1
    return "".join(out)


def glob_regex(glob: str) -> str:
    """The regex (Java and Python syntax, unanchored) of a path glob."""
    if glob.endswith("/"):
        glob += "**"
    parts = glob.split("/")
    out = []
    for k, part in enumerate(parts):
        last = k == len(parts) - 1
        if part == "**":
            out.append(".*" if last else "(?:.*/)?")
        else:
            out.append(_component(part) + ("" if last else "/"))
    return "".join(out)


def globs_regex(o: OptOut) -> str:
    """One anchored regex for every glob line, over repository + NUL + path. `\\z` is Java's end
    of input (`$` would also match before a final line break); Python spells it `\\Z`."""
    groups = ["".join(map(_literal, repo)) + "\\x00(?:" + "|".join(glob_regex(g) for g in gs) + ")"
              for repo, gs in o.globs]
    return "(?s)^(?:" + "|".join(groups) + ")\\z"


def opted_out(o: OptOut, repo_name: Column, path: Column) -> Column:
    """True when the list names the file (never null)."""
    repo = F.lower(repo_name)
    found = repo.isin(*o.repos) if o.repos else F.lit(False)
    if o.globs:
        key = F.concat(repo, F.lit(_SEPARATOR), path)
        found = found | (repo.isin(*[r for r, _ in o.globs]) & key.rlike(globs_regex(o)))
    return F.coalesce(found, F.lit(False))
