"""Credentials in source files: detection (a file-level `secret` drop) and in-place redaction.

The patterns are written in the common subset of Java's and Python's regex syntax (explicit
ASCII classes instead of `\\s` and `\\b`, scoped `(?i:...)` flags), so Spark and the Python
reference in bench/ agree. In a pattern with a capture group, group 1 is the context that
redaction keeps (`password = "`), and only the literal after it is replaced. Each pattern also
lists literal hints, one of which every match contains; the regex runs only on files that
contain a hint (Java tries a regex that starts with a lookbehind or a class at every position,
about 20 times slower than a substring search).

What is found: AWS access key ids, PEM private-key blocks with key material (a bare
"-----BEGIN RSA PRIVATE KEY-----" string in a parser is not a key), GitHub, Hugging Face, Slack
and Stripe tokens, Slack webhooks, Google API keys, and a generic assignment of a quoted literal
of 12+ non-blank characters with at least one letter and one digit to a name that contains
password/passwd/secret/api_key/access_key/auth_token/access_token/private_key/client_secret
(`SECRET_KEY = 'k3y...'`, `"password": "..."`). Literals with spaces (`"<your password here>"`)
and names without digits (`FORCE_CHANGE_PASSWORD = "FORCE_CHANGE_PASSWORD"`) are left alone.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F

PLACEHOLDER = "<REDACTED_SECRET>"
EMAIL_PLACEHOLDER = "<REDACTED_EMAIL>"

_NOT_AFTER_WORD = "(?<![A-Za-z0-9_])"
_NOT_BEFORE_WORD = "(?![A-Za-z0-9_])"
_SECRET_NAME = ("(?i:password|passwd|secret|api_?key|access_?key|auth_?token|access_?token|"
                "private_?key|client_?secret)")


@dataclass(frozen=True)
class SecretPattern:
    kind: str
    pattern: str          # Java/Python regex
    replacement: str      # Java `$1` syntax
    hints: tuple          # literals one of which every match contains: a cheap prefilter
    hints_lowercase: bool = False  # hints are looked up in the lower-cased content


# A key block: the header, 32+ base64 characters, then anything that can continue it in source
# (base64, blanks, quotes, escaped newlines, and "#" for a key pasted as comment lines, whose
# every line must go) up to the END line when there is one.
_KEY_BODY = "[A-Za-z0-9+/=\\\\\"' \\t\\r\\n#]*"
# Between the header and the base64: a line break, indentation and a comment's "# ", or an
# escaped "\\n\\n" and a PGP block's blank armor line (bench/secrets_recall.py found keys that
# 8 characters missed).
_KEY_GAP = "[^A-Za-z0-9+/]{0,40}"
# A generic secret is a literal with a letter and a digit: enum values and names such as
# "FORCE_CHANGE_PASSWORD" or "secretsmanager" are not credentials.
_LITERAL = "[^\"'\\x00-\\x20]"
_HAS_LETTER_AND_DIGIT = f"(?={_LITERAL}*[0-9])(?={_LITERAL}*[A-Za-z])"
_GENERIC_HINTS = ("passw", "secret", "apikey", "api_key", "accesskey", "access_key", "authtoken",
                  "auth_token", "accesstoken", "access_token", "privatekey", "private_key")
_AWS_PREFIXES = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA")

SECRET_PATTERNS: list[SecretPattern] = [
    SecretPattern("aws_access_key", _NOT_AFTER_WORD + "(?:" + "|".join(_AWS_PREFIXES) + ")[A-Z0-9]{16}"
                  + _NOT_BEFORE_WORD, PLACEHOLDER, _AWS_PREFIXES),
    SecretPattern("private_key", "-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----" + _KEY_GAP
                  + "[A-Za-z0-9+/]{32}" + _KEY_BODY + "(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)?",
                  PLACEHOLDER, ("PRIVATE KEY",)),
    SecretPattern("github_token", _NOT_AFTER_WORD + "(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})",
                  PLACEHOLDER, ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")),
    SecretPattern("huggingface_token", _NOT_AFTER_WORD + "hf_[A-Za-z0-9]{34}" + _NOT_BEFORE_WORD, PLACEHOLDER,
                  ("hf_",)),
    SecretPattern("slack_token", _NOT_AFTER_WORD + "xox[abposr]-[A-Za-z0-9-]{10,250}", PLACEHOLDER, ("xox",)),
    SecretPattern("slack_webhook", "https://hooks\\.slack\\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+",
                  PLACEHOLDER, ("hooks.slack.com",)),
    SecretPattern("google_api_key", _NOT_AFTER_WORD + "AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])", PLACEHOLDER,
                  ("AIza",)),
    SecretPattern("stripe_key", _NOT_AFTER_WORD + "(?:sk|rk)_live_[0-9A-Za-z]{24,99}" + _NOT_BEFORE_WORD,
                  PLACEHOLDER, ("k_live_",)),
    SecretPattern("generic_secret", "(" + _SECRET_NAME + "[A-Za-z0-9_]*[\"']?[ \\t]*[:=][ \\t]*[rbuRBU]{0,2}[\"'])"
                  + _HAS_LETTER_AND_DIGIT + _LITERAL + "{12,}(?=[\"'])", "$1" + PLACEHOLDER, _GENERIC_HINTS,
                  hints_lowercase=True),
]
SECRET_KINDS = [p.kind for p in SECRET_PATTERNS]

EMAIL_PATTERN = ("(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*"
                 "\\.[A-Za-z]{2,24}(?![A-Za-z0-9-])")


def _found(p: SecretPattern, content: Column, hints: Column | None) -> Column:
    # A plain substring test first: a regex that cannot start with a literal is slow in Java
    # (it is tried at every position), and most files contain none of the hints. `hints` is
    # the array of kinds whose hints `features.measure` found; without it, Spark looks.
    if hints is not None:
        hint = F.array_contains(hints, p.kind)
    else:
        text = F.lower(content) if p.hints_lowercase else content
        hint = F.lit(False)
        for h in p.hints:
            hint = hint | text.contains(h)
    return hint & content.rlike(p.pattern)


def has_secret(content: Column, hints: Column | None = None) -> Column:
    found = F.lit(False)
    for p in SECRET_PATTERNS:
        found = found | _found(p, content, hints)
    return found


def secret_kind(content: Column, hints: Column | None = None) -> Column:
    """Name of the first kind (in SECRET_PATTERNS order) found in the file, or null."""
    expr = F.when(F.lit(False), F.lit(None).cast("string"))
    for p in SECRET_PATTERNS:
        expr = expr.when(_found(p, content, hints), F.lit(p.kind))
    return expr.otherwise(F.lit(None).cast("string"))


def hint_table() -> list[tuple[str, tuple, bool]]:
    """(kind, hint literals, look in lower-cased text) for `features.measure`."""
    return [(p.kind, p.hints, p.hints_lowercase) for p in SECRET_PATTERNS]


def count_secrets(content: Column) -> Column:
    """Number of secret literals in the file (what redaction replaces)."""
    total = F.lit(0)
    for p in SECRET_PATTERNS:
        total = total + F.regexp_count(content, F.lit(p.pattern))
    return total.cast("int")


def redact_secrets(content: Column) -> Column:
    for p in SECRET_PATTERNS:
        content = F.regexp_replace(content, p.pattern, p.replacement)
    return content


def count_emails(content: Column) -> Column:
    return F.regexp_count(content, F.lit(EMAIL_PATTERN)).cast("int")


def redact_emails(content: Column) -> Column:
    return F.regexp_replace(content, EMAIL_PATTERN, EMAIL_PLACEHOLDER)


def python_pattern(pattern: str) -> str:
    """The pattern for Python's `re`: same syntax; case folding kept to ASCII as in Java."""
    return pattern.replace("(?i:", "(?ai:")
