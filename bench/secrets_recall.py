"""Secrets, measured: how many planted credentials the clean stage's secret detector finds, next
to detect-secrets, and how many real files each flags when nothing was planted.

1. Sample real .py files (the trees of the project's default corpus: this Python's standard
   library and site-packages; seeded; UTF-8 files of at most --max-bytes).
2. Run both detectors on every sampled file as it is: a flag there is a false positive (or a
   credential-shaped string that was already in the file; the examples are listed).
3. Copy files that neither detector flagged and plant one fake secret in each copy: a random
   value of the right shape from a seeded RNG (never a real credential), at a random line, as a
   string assignment, a comment or a dict literal, for every kind `secrets.SECRET_KINDS` knows
   plus a few common kinds it does not (JWTs, AWS secret access keys, ...).
4. Run both detectors on the copies. The host was clean for both, so a flag on a copy is the
   planted secret's (checked: detect-secrets' finding must be on a planted line).

Ours is the clean stage's own decision: `features_udf` (the Python pass that finds the literal
hints) then `secrets.has_secret(content, hints)`, `secret_kind` and `redact_secrets`, in a local
Spark session, the expressions `transform.clean` uses (without the quality filters before them:
every file is tested). The same decision is recomputed with Python `re` as a parity check.
detect-secrets runs with `default_settings()` (all plugins, default filters) on the same bytes
written to disk, in --workers processes; "w/o entropy" is the same scan without its
Base64/Hex high-entropy plugins.

    flock /tmp/cc-tests.lock .venv/bin/python bench/secrets_recall.py [--files 3000] [--per-kind 60]
        [--seed 20261129] [--max-bytes 48000] [--workers 2] [--out bench/results]
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import hashlib
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import string
import sys
import sysconfig
import tempfile
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

# pyspark and the stage modules are imported inside functions: the detect-secrets workers are
# spawned processes that re-import this module and need none of them.

ENTROPY_TYPES = {"Base64 High Entropy String", "Hex High Entropy String"}
POSITIONS = ("assignment", "comment", "dict")
# Packages installed only to run this measurement: left out so the sample does not depend on them.
EXCLUDED_PACKAGES = ("detect_secrets",)

# ----------------------------------------------------------------------------------- sampling


@dataclass
class Source:
    fid: int
    origin: str      # "stdlib", "site-packages" (the venv's) or "base-site-packages" (the base Python's)
    rel: str         # path under its source root
    text: str


def sample_files(n: int, seed: int, max_bytes: int) -> list[Source]:
    from codecorpus.tools.make_corpus import default_sources, iter_files

    sources = default_sources()
    stdlib, venv = os.path.realpath(sources[0]), os.path.realpath(sysconfig.get_paths()["purelib"])
    candidates = []
    for root, path in iter_files(sources, (".py",)):
        rel = path.relative_to(root)
        if rel.parts[0] in EXCLUDED_PACKAGES or path.stat().st_size > max_bytes:
            continue
        candidates.append((root, rel, path))
    picked = random.Random(f"{seed}:sample").sample(candidates, min(n * 2, len(candidates)))
    out = []
    for root, rel, path in picked:  # twice as many drawn: non-UTF-8 files are skipped
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        real = os.path.realpath(root)
        origin = "stdlib" if real == stdlib else "site-packages" if real == venv else "base-site-packages"
        out.append(Source(len(out), origin, str(rel), text))
        if len(out) == n:
            break
    return out


# ---------------------------------------------------------------------------- fake secrets

B62 = string.ascii_letters + string.digits
B64 = B62 + "+/"
B64URL = B62 + "-_"
BASE32 = string.ascii_uppercase + "234567"
UPPER_DIGITS = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
# Password characters: no quotes, backslash or blank (they would end or change the literal).
PASSWORD_CHARS = B62 + "!#%&*+-.:;<=>?@^_~"


@dataclass
class Fake:
    kind: str
    variant: str
    value: str | list      # one line, or the lines of a PEM block
    needles: list          # what must be gone from the file for the secret to count as redacted
    names: list            # variable / dict-key names it is typically assigned to
    labels: list           # how a comment would introduce it


def chars(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def digits(rng: random.Random, n: int) -> str:
    return str(rng.randint(1, 9)) + chars(rng, string.digits, n - 1)


def pick(rng: random.Random, weighted: dict) -> str:
    return rng.choices(list(weighted), weights=list(weighted.values()))[0]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def base62(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = (string.digits + string.ascii_letters)[r] + out
    return out.rjust(width, "0")


def fake_aws_access_key(rng):
    prefix = pick(rng, {"AKIA": 3, "ASIA": 1})  # long-term and temporary credentials
    value = prefix + chars(rng, BASE32, 16)
    return Fake("aws_access_key", prefix, value, [value],
                ["AWS_ACCESS_KEY_ID", "aws_access_key_id", "access_key", "AccessKeyId", "key_id"],
                ["AWS access key", "key id", "IAM user"])


def fake_aws_secret_key(rng):
    value = chars(rng, B64, 40)
    return Fake("aws_secret_key", "40-char", value, [value],
                ["AWS_SECRET_ACCESS_KEY", "aws_secret_access_key", "SecretAccessKey", "secret_key", "aws_secret"],
                ["aws_secret_access_key", "AWS secret", "secret access key"])


def fake_github_token(rng):
    variant = pick(rng, {"ghp": 5, "gho": 1.5, "ghs": 1.5, "github_pat": 2})
    if variant == "github_pat":  # fine-grained personal access token
        value = f"github_pat_{chars(rng, B62, 22)}_{chars(rng, B62, 59)}"
    else:  # 30 random characters and their CRC32 in base62, as GitHub issues them
        body = chars(rng, B62, 30)
        value = f"{variant}_{body}{base62(zlib.crc32(body.encode()), 6)}"
    return Fake("github_token", variant, value, [value],
                ["GITHUB_TOKEN", "gh_token", "token", "GH_PAT", "github_auth"],
                ["GitHub token", "token", "PAT"])


def fake_huggingface_token(rng):
    value = "hf_" + chars(rng, string.ascii_letters, 34)
    return Fake("huggingface_token", "hf", value, [value],
                ["HF_TOKEN", "hf_token", "HUGGING_FACE_HUB_TOKEN", "token", "use_auth_token"],
                ["HF token", "hub token", "token"])


def fake_slack_token(rng):
    variant = pick(rng, {"xoxb": 4.5, "xoxp": 3.5, "xapp": 2})
    if variant == "xoxb":
        value = f"xoxb-{digits(rng, 12)}-{digits(rng, 13)}-{chars(rng, B62, 24)}"
    elif variant == "xoxp":
        value = f"xoxp-{digits(rng, 12)}-{digits(rng, 12)}-{digits(rng, 13)}-{chars(rng, HEX, 32)}"
    else:  # app-level token (Socket Mode)
        value = f"xapp-1-A{chars(rng, UPPER_DIGITS, 10)}-{digits(rng, 13)}-{chars(rng, HEX, 64)}"
    return Fake("slack_token", variant, value, [value],
                ["SLACK_BOT_TOKEN", "slack_token", "token", "SLACK_APP_TOKEN"], ["Slack token", "bot token"])


def fake_slack_webhook(rng):
    path = f"T{chars(rng, UPPER_DIGITS, 8)}/B{chars(rng, UPPER_DIGITS, 10)}/{chars(rng, B62, 24)}"
    return Fake("slack_webhook", "services", "https://hooks.slack.com/services/" + path, [path],
                ["SLACK_WEBHOOK_URL", "webhook_url", "url", "hook"], ["webhook", "Slack hook"])


def fake_google_api_key(rng):
    value = "AIzaSy" + chars(rng, B64URL, 33)
    return Fake("google_api_key", "AIza", value, [value],
                ["GOOGLE_API_KEY", "api_key", "MAPS_KEY", "key", "developerKey"], ["API key", "maps key"])


def fake_stripe_key(rng):
    prefix = pick(rng, {"sk_live_": 7, "rk_live_": 3})
    variant = pick(rng, {"24": 4, "99": 6})  # the old length and today's
    value = prefix + (chars(rng, B62, 24) if variant == "24" else "51" + chars(rng, B62, 97))
    return Fake("stripe_key", prefix + variant, value, [value],
                ["STRIPE_SECRET_KEY", "stripe.api_key", "stripe_key", "sk"], ["Stripe key", "live key"])


# (header, body prefix, body length, line width, armor headers): real sizes of each key type.
_PEM = {
    "rsa": ("RSA PRIVATE KEY", "MIIEpAIBAAKCAQEA", 1588, 64, []),
    "pkcs8": ("PRIVATE KEY", "MIIEvgIBADANBgkqhkiG9w0BAQEFAASC", 1624, 64, []),
    "ec": ("EC PRIVATE KEY", "MHcCAQEEI", 164, 64, []),
    "openssh": ("OPENSSH PRIVATE KEY", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
                392, 70, []),
    "encrypted_pkcs8": ("ENCRYPTED PRIVATE KEY", "MIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI", 1752, 64, []),
    "rsa_legacy_encrypted": ("RSA PRIVATE KEY", "", 1600, 64, ["Proc-Type: 4,ENCRYPTED", "DEK-Info: AES-128-CBC,{iv}", ""]),
    "pgp": ("PGP PRIVATE KEY BLOCK", "lQOYB", 1320, 64, [""]),
    "pgp_version_header": ("PGP PRIVATE KEY BLOCK", "lQOYB", 1320, 64, ["Version: GnuPG v2", ""]),
}
_PEM_WEIGHTS = {"rsa": 25, "pkcs8": 25, "ec": 10, "openssh": 15, "encrypted_pkcs8": 7, "rsa_legacy_encrypted": 8,
                "pgp": 6, "pgp_version_header": 4}


def fake_private_key(rng):
    variant = pick(rng, _PEM_WEIGHTS)
    header, prefix, length, width, armor = _PEM[variant]
    body = prefix + chars(rng, B64, length - len(prefix))
    lines = [body[i:i + width] for i in range(0, len(body), width)]
    if variant.startswith("pgp"):
        lines.append("=" + chars(rng, B64, 4))  # the armor checksum
    iv = chars(rng, HEX.upper(), 32)
    value = [f"-----BEGIN {header}-----", *(a.format(iv=iv) for a in armor), *lines, f"-----END {header}-----"]
    return Fake("private_key", variant, value, [ln for ln in lines if len(ln) >= 16],
                ["PRIVATE_KEY", "private_key", "key_pem", "SSH_KEY", "pem"], ["private key", "deploy key"])


# Names our generic pattern covers, and common ones it does not (detect-secrets knows some).
_GENERIC_NAMES_OURS = ["password", "db_password", "DB_PASSWORD", "passwd", "SECRET_KEY", "client_secret",
                       "secret", "api_key", "apiKey", "API_KEY", "access_token", "auth_token", "private_key"]
_GENERIC_NAMES_OTHER = ["pwd", "db_pass", "token", "auth_key", "passphrase"]


def _password(rng: random.Random, n: int) -> str:
    # A letter and a digit, like most password policies ask (and our pattern needs).
    rest = chars(rng, PASSWORD_CHARS, n - 2)
    at = rng.randint(0, len(rest))
    return rest[:at] + rng.choice(string.ascii_letters) + str(rng.randint(0, 9)) + rest[at:]


def fake_generic_secret(rng):
    group = pick(rng, {"our_name": 3, "other_name": 1})
    name = rng.choice(_GENERIC_NAMES_OURS if group == "our_name" else _GENERIC_NAMES_OTHER)
    style = pick(rng, {"password": 35, "short_password": 15, "hex": 25, "base64": 25})
    if style == "password":
        value = _password(rng, rng.randint(12, 24))
    elif style == "short_password":
        value = _password(rng, rng.randint(8, 11))
    elif style == "hex":
        value = chars(rng, HEX, rng.choice([32, 40]))
    else:
        value = chars(rng, B64URL, rng.randint(24, 44))
    return Fake("generic_secret", f"{group}/{style}", value, [value], [name], [name, "password", "secret"])


def fake_jwt(rng):
    alg = pick(rng, {"HS256": 6, "RS256": 4})
    header = {"alg": alg, "typ": "JWT"}
    claims = {"sub": str(rng.randint(10 ** 6, 10 ** 9)), "name": rng.choice(["Ada", "Linus", "Grace"]),
              "iat": rng.randint(1_500_000_000, 1_800_000_000)}
    sig = rng.randbytes(32 if alg == "HS256" else 256)
    value = ".".join(b64url(json.dumps(p, separators=(",", ":")).encode()) for p in (header, claims)) + "." + b64url(sig)
    return Fake("jwt", alg, value, [value], ["token", "JWT", "access_token", "id_token", "auth_header"],
                ["JWT", "bearer token", "token"])


def fake_openai_key(rng):
    variant = pick(rng, {"legacy": 1, "project": 1})
    head = "sk-" if variant == "legacy" else "sk-proj-" + chars(rng, B64URL, 54)
    value = head + chars(rng, B62, 20) + "T3BlbkFJ" + chars(rng, B62, 20)
    return Fake("openai_key", variant, value, [value], ["OPENAI_API_KEY", "openai.api_key", "api_key", "key"],
                ["OpenAI key", "key"])


def fake_gitlab_token(rng):
    value = "glpat-" + chars(rng, B64URL, 20)
    return Fake("gitlab_token", "glpat", value, [value], ["GITLAB_TOKEN", "private_token", "gl_token", "token"],
                ["GitLab token", "token"])


def fake_pypi_token(rng):
    value = "pypi-AgEIcHlwaS5vcmc" + chars(rng, B64URL, rng.randint(150, 170))
    return Fake("pypi_token", "pypi", value, [value], ["PYPI_TOKEN", "TWINE_PASSWORD", "password", "token"],
                ["PyPI token", "upload token"])


def fake_sendgrid_key(rng):
    value = f"SG.{chars(rng, B64URL, 22)}.{chars(rng, B64URL, 43)}"
    return Fake("sendgrid_key", "SG", value, [value], ["SENDGRID_API_KEY", "sendgrid_key", "api_key", "SG_KEY"],
                ["SendGrid key", "mail key"])


def fake_basic_auth_url(rng):
    scheme, port = rng.choice([("postgresql", 5432), ("mysql", 3306), ("redis", 6379), ("amqp", 5672),
                               ("https", 443)])
    password = chars(rng, B62 + "-_.", rng.randint(10, 16))  # URL-safe, as a URL holds it
    user = rng.choice(["admin", "app", "deploy", "svc_reporting"])
    value = f"{scheme}://{user}:{password}@db{rng.randint(1, 9)}.internal.example:{port}/main"
    return Fake("basic_auth_url", scheme, value, [password],
                ["DATABASE_URL", "SQLALCHEMY_DATABASE_URI", "BROKER_URL", "url", "dsn"], ["connection", "DSN"])


GENERATORS = {
    "aws_access_key": fake_aws_access_key, "private_key": fake_private_key, "github_token": fake_github_token,
    "huggingface_token": fake_huggingface_token, "slack_token": fake_slack_token,
    "slack_webhook": fake_slack_webhook, "google_api_key": fake_google_api_key, "stripe_key": fake_stripe_key,
    "generic_secret": fake_generic_secret,
    # Not among our kinds: common in code, and detect-secrets has plugins for most.
    "aws_secret_key": fake_aws_secret_key, "jwt": fake_jwt, "openai_key": fake_openai_key,
    "gitlab_token": fake_gitlab_token, "pypi_token": fake_pypi_token, "sendgrid_key": fake_sendgrid_key,
    "basic_auth_url": fake_basic_auth_url,
}

# ---------------------------------------------------------------------------------- planting

_DICT_VARS = ["config", "settings", "CREDENTIALS", "params", "auth", "DEFAULTS"]
_DICT_NEIGHBOURS = [("user", "deploy"), ("host", "db.internal"), ("region", "us-east-1"), ("env", "prod")]


def _render_line(fake: Fake, position: str, name: str, rng, indent: str) -> tuple[list, str]:
    """The planted lines for a one-line value, and which layout was used."""
    q, v = rng.choice(['"', "'"]), fake.value
    if position == "assignment":
        return [f"{indent}{name} = {q}{v}{q}"], "assignment"
    if position == "comment":
        if rng.random() < 0.5:  # commented-out code keeps its quotes; a note usually has none
            return [f"{indent}# {name} = {q}{v}{q}"], "comment/code"
        return [f"{indent}# {rng.choice(fake.labels)}: {v}"], "comment/note"
    key, var = name.split(".")[-1], rng.choice(_DICT_VARS)
    if fake.kind == "jwt" and rng.random() < 0.5:  # where a JWT usually sits in code
        key, v, var = "Authorization", "Bearer " + v, "headers"
    nk, nv = rng.choice(_DICT_NEIGHBOURS)
    if rng.random() < 0.5:
        return [f"{indent}{var} = {{{q}{nk}{q}: {q}{nv}{q}, {q}{key}{q}: {q}{v}{q}}}"], "dict/one-line"
    return [f"{indent}{var} = {{", f"{indent}    {q}{nk}{q}: {q}{nv}{q},", f"{indent}    {q}{key}{q}: {q}{v}{q},",
            f"{indent}}}"], "dict/multi-line"


def _render_block(fake: Fake, position: str, name: str, rng, indent: str) -> tuple[list, str]:
    """The planted lines for a PEM block."""
    lines, q = fake.value, rng.choice(['"', "'"])
    if position == "assignment":  # a triple-quoted literal starts at the margin inside
        return [f'{indent}{name} = """{lines[0]}', *lines[1:], '"""'], "assignment/triple-quoted"
    if position == "comment":
        return [f"{indent}# {rng.choice(fake.labels)}:", *(f"{indent}# {ln}" for ln in lines)], "comment/block"
    escaped = "\\n".join(lines) + "\\n"  # as in a service-account JSON pasted into code
    line = (f"{indent}{rng.choice(_DICT_VARS)} = {{{q}type{q}: {q}service_account{q}, "
            f"{q}{name.split('.')[-1]}{q}: {q}{escaped}{q}}}")
    return [line], "dict/escaped-newlines"


def plant(text: str, fake: Fake, position: str, rng: random.Random) -> tuple[str, int, int, str, str]:
    """Insert the secret before a random line, indented like it; returns the new text, the
    first and last planted line (1-based, counting "\\n" only, as detect-secrets reads) and the
    layout and name used."""
    parts = text.split("\n")
    n_lines = len(parts) - (1 if text.endswith("\n") else 0)
    at = rng.randint(0, n_lines)
    nxt = parts[at] if at < n_lines else ""
    indent = nxt[:len(nxt) - len(nxt.lstrip(" \t"))]
    name = rng.choice(fake.names)
    render = _render_block if isinstance(fake.value, list) else _render_line
    snippet, layout = render(fake, position, name, rng, indent)
    return "\n".join(parts[:at] + snippet + parts[at:]), at + 1, at + len(snippet), layout, name


@dataclass
class Planted:
    fid: int
    host: int
    fake: Fake
    position: str
    layout: str
    name: str
    first_line: int
    last_line: int
    text: str = field(repr=False)


def plant_all(sources: list[Source], hosts: list[int], per_kind: int, seed: int) -> list[Planted]:
    rng = random.Random(f"{seed}:plant")
    needed = per_kind * len(GENERATORS)
    order = rng.sample(hosts, needed) if len(hosts) >= needed else rng.choices(hosts, k=needed)
    out = []
    for make in GENERATORS.values():
        for j in range(per_kind):
            host = order[len(out)]
            fake, position = make(rng), POSITIONS[j % len(POSITIONS)]
            text, first, last, layout, name = plant(sources[host].text, fake, position, rng)
            out.append(Planted(len(sources) + len(out), host, fake, position, layout, name, first, last, text))
    return out


# ----------------------------------------------------------------------------- our detector


def spark_session():
    from codecorpus.core.spark import local_session, spark_defaults

    conf = {**spark_defaults(), "spark.sql.shuffle.partitions": "4", "spark.driver.memory": "3g"}
    return local_session("bench-secrets", "local[2]", conf)


def scan_ours(spark, folder: Path, texts: dict[int, str]) -> dict[int, dict]:
    """The clean stage's secret decision on each text: the measuring pass's hints, then
    has_secret / secret_kind; flagged texts also get count_secrets and redact_secrets."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from codecorpus.core.config import CleanConfig
    from codecorpus.stages.clean import secrets
    from codecorpus.stages.clean.features import features_udf
    from pyspark.sql import functions as F

    path = folder / f"texts-{len(texts)}-{min(texts)}.parquet"
    pq.write_table(pa.table({"fid": list(texts), "content": list(texts.values())}), path, row_group_size=256)
    content = F.col("content")
    measure = features_udf(CleanConfig().scan_width, secrets.hint_table())
    df = spark.read.parquet(str(path)).withColumn("_f", measure(content))
    hints = F.col("_f")["secret_hints"]
    flag = secrets.has_secret(content, hints)
    rows = df.select("fid", flag.alias("flag"), F.when(flag, secrets.secret_kind(content, hints)).alias("kind"),
                     F.when(flag, secrets.count_secrets(content)).alias("count"),
                     F.when(flag, secrets.redact_secrets(content)).alias("redacted")).collect()
    return {r["fid"]: {"flag": r["flag"], "kind": r["kind"], "count": r["count"], "redacted": r["redacted"]}
            for r in rows}


class PythonDecision:
    """The same decision with Python `re` (secrets.python_pattern) and features.HintFinder."""

    def __init__(self):
        from codecorpus.stages.clean import secrets
        from codecorpus.stages.clean.features import HintFinder

        self.finder = HintFinder(secrets.hint_table())
        self.patterns = [(p.kind, re.compile(secrets.python_pattern(p.pattern))) for p in secrets.SECRET_PATTERNS]

    def kind(self, text: str) -> str | None:
        hinted = set(self.finder.kinds(text, text.lower()))
        return next((k for k, rx in self.patterns if k in hinted and rx.search(text)), None)

    def match_line(self, text: str, kind: str) -> str:
        """The line where a kind matches (for the listed examples)."""
        m = dict(self.patterns)[kind].search(text)
        if not m:
            return ""
        start = text.rfind("\n", 0, m.start()) + 1
        end = text.find("\n", m.start())
        return text[start:end if end >= 0 else len(text)]


# --------------------------------------------------------------------------- detect-secrets

_DS_SETTINGS = contextlib.ExitStack()


def _ds_init() -> None:
    # One settings context per worker process, entered once and kept for its lifetime.
    from detect_secrets.settings import default_settings

    _DS_SETTINGS.enter_context(default_settings())


def _ds_scan(path: str) -> tuple[str, list]:
    from detect_secrets import SecretsCollection

    found = SecretsCollection()
    found.scan_file(path)
    return path, sorted((s.type, s.line_number, s.secret_value or "") for _, s in found)


def write_files(folder: Path, items: list[tuple[int, str, str]]) -> dict[int, str]:
    """Write texts as UTF-8 bytes (no newline translation), named after their source file."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for fid, rel, text in items:
        path = folder / f"{fid:05d}_{Path(rel).name}"
        path.write_bytes(text.encode("utf-8"))
        paths[fid] = str(path)
    return paths


def scan_detect_secrets(paths: dict[int, str], workers: int) -> dict[int, list]:
    by_path = {p: fid for fid, p in paths.items()}
    # spawn, not fork: the driver holds a JVM gateway that children must not inherit.
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_ds_init) as pool:
        return {by_path[p]: found for p, found in pool.imap_unordered(_ds_scan, sorted(by_path), chunksize=8)}


# ------------------------------------------------------------------------------------ metrics


def _rate(k: int, n: int) -> dict:
    return {"found": k, "of": n, "rate": round(k / n, 4) if n else None}


def _agreement(pairs: list[tuple[bool, bool]]) -> dict:
    c = Counter(("both" if a and b else "only_ours" if a else "only_detect_secrets" if b else "neither")
                for a, b in pairs)
    return {k: c.get(k, 0) for k in ("both", "only_ours", "only_detect_secrets", "neither")}


def planted_outcome(p: Planted, ours: dict, ds: list) -> dict:
    on_planted = [f for f in ds if p.first_line <= f[1] <= p.last_line]
    redacted = ours["redacted"]
    return {
        "kind": p.fake.kind, "variant": p.fake.variant, "position": p.position, "layout": p.layout, "name": p.name,
        "ours": bool(ours["flag"]), "ours_kind": ours["kind"],
        "ours_redacted": bool(ours["flag"]) and not any(nd in redacted for nd in p.fake.needles),
        "ds": bool(on_planted), "ds_off_planted_lines": len(ds) - len(on_planted),
        "ds_no_entropy": any(f[0] not in ENTROPY_TYPES for f in on_planted),
        "ds_types": sorted({f[0] for f in on_planted}),
    }


def summarize_planted(outcomes: list[dict], our_kinds: list[str]) -> dict:
    def group(key):
        buckets = defaultdict(list)
        for o in outcomes:
            buckets[key(o)].append(o)
        return {k: {"planted": len(v), "ours": _rate(sum(o["ours"] for o in v), len(v)),
                    "detect_secrets": _rate(sum(o["ds"] for o in v), len(v)),
                    "detect_secrets_no_entropy": _rate(sum(o["ds_no_entropy"] for o in v), len(v)),
                    "ours_redacted": _rate(sum(o["ours_redacted"] for o in v), len(v)),
                    "agreement": _agreement([(o["ours"], o["ds"]) for o in v])}
                for k, v in buckets.items()}

    by_kind = group(lambda o: o["kind"])
    for kind, row in by_kind.items():
        row["in_our_kinds"] = kind in our_kinds
        mine = [o for o in outcomes if o["kind"] == kind]
        row["ours_reported_kinds"] = dict(Counter(o["ours_kind"] for o in mine if o["ours"]))
        row["detect_secrets_types"] = dict(Counter(t for o in mine for t in o["ds_types"]))
    ours_set = [o for o in outcomes if o["kind"] in our_kinds]
    return {
        "by_kind": by_kind,
        "by_position": group(lambda o: o["position"]),
        "by_kind_position": group(lambda o: f"{o['kind']}/{o['position']}"),
        "by_variant": group(lambda o: f"{o['kind']}/{o['variant']}"),
        "by_layout": group(lambda o: o["layout"]),
        "total_our_kinds_only": {
            "planted": len(ours_set), "ours": _rate(sum(o["ours"] for o in ours_set), len(ours_set)),
            "detect_secrets": _rate(sum(o["ds"] for o in ours_set), len(ours_set)),
            "agreement": _agreement([(o["ours"], o["ds"]) for o in ours_set])},
        "total": {"planted": len(outcomes), "ours": _rate(sum(o["ours"] for o in outcomes), len(outcomes)),
                  "detect_secrets": _rate(sum(o["ds"] for o in outcomes), len(outcomes)),
                  "agreement": _agreement([(o["ours"], o["ds"]) for o in outcomes])},
        "ds_findings_off_planted_lines": sum(o["ds_off_planted_lines"] for o in outcomes),
    }


def _mask(value: str) -> str:
    # Examples quote what was found in public packages, shortened.
    return value if len(value) <= 12 else f"{value[:6]}...{value[-4:]} ({len(value)} chars)"


def summarize_clean(sources: list[Source], ours: dict, ds: dict, py: PythonDecision, examples: int) -> dict:
    n = len(sources)
    ours_flag = {s.fid for s in sources if ours[s.fid]["flag"]}
    ds_flag = {s.fid for s in sources if ds[s.fid]}
    ds_regex = {s.fid for s in sources if any(f[0] not in ENTROPY_TYPES for f in ds[s.fid])}
    ours_examples = [{"file": f"{s.origin}/{s.rel}", "kind": ours[s.fid]["kind"],
                      "line": py.match_line(s.text, ours[s.fid]["kind"]).strip()[:160]}
                     for s in sources if s.fid in ours_flag]
    ds_examples = [{"file": f"{s.origin}/{s.rel}", "type": t, "line": ln, "value": _mask(v)}
                   for s in sources if s.fid in ds_flag for t, ln, v in ds[s.fid]]
    rng = random.Random(0)  # a fixed sample of detect-secrets' many findings
    return {
        "files": n,
        "ours": _rate(len(ours_flag), n), "detect_secrets": _rate(len(ds_flag), n),
        "detect_secrets_no_entropy": _rate(len(ds_regex), n),
        "ours_by_kind": dict(Counter(ours[f]["kind"] for f in ours_flag)),
        "detect_secrets_files_by_type": dict(Counter(t for s in sources for t in {f[0] for f in ds[s.fid]})),
        "detect_secrets_findings_by_type": dict(Counter(f[0] for s in sources for f in ds[s.fid])),
        "agreement": _agreement([(s.fid in ours_flag, s.fid in ds_flag) for s in sources]),
        "agreement_no_entropy": _agreement([(s.fid in ours_flag, s.fid in ds_regex) for s in sources]),
        "ours_examples": ours_examples,
        "detect_secrets_examples": sorted(rng.sample(ds_examples, min(examples, len(ds_examples))),
                                          key=lambda e: (e["type"], e["file"])),
        "detect_secrets_examples_no_entropy": [e for e in ds_examples if e["type"] not in ENTROPY_TYPES][:examples],
    }


def parity(texts: dict[int, str], ours: dict, py: PythonDecision) -> dict:
    """Spark's decision against Python `re` on the same hints (they are meant to agree)."""
    diffs = []
    for fid, text in texts.items():
        kind = py.kind(text)
        if (kind is not None) != bool(ours[fid]["flag"]) or (kind and kind != ours[fid]["kind"]):
            diffs.append({"fid": fid, "spark": ours[fid]["kind"], "python": kind})
    return {"files": len(texts), "disagreements": len(diffs), "examples": diffs[:10]}


# ------------------------------------------------------------------------------------- report

DEFINITIONS = {
    "found": "the detector flags the file; the host was clean for both detectors, so the flag is the "
             "planted secret's (ours: has_secret with the measuring pass's hints, the stage's `secret` drop; "
             "detect-secrets: a finding, which must be on a planted line)",
    "fully redacted": "after redact_secrets no part of the planted value is left (for a PEM block: none of "
                      "its base64 lines); what redact mode and rejects/ keep",
    "w/o entropy": "detect-secrets' findings other than Base64/Hex High Entropy String",
    "false positive": "a flag on an un-planted real file",
}

def _pct(r: dict) -> str:
    if not r["of"]:
        return "-"
    pct = 100 * r["rate"]
    digits = 2 if 0 < pct < 1 else 1 if 0 < pct < 10 else 0  # small rates keep a figure
    return f"{r['found']}/{r['of']} ({pct:.{digits}f}%)"


def markdown(result: dict) -> str:
    p, c = result["planted"], result["clean"]
    out = [f"# Secrets, measured ({result['date']})", "",
           f"`{result['command']}`", "",
           f"{c['files']} real files ("
           + ", ".join(f"{v} {k}" for k, v in result["sample"]["by_origin"].items()) + f"), {p['total']['planted']} planted copies "
           f"({result['args']['per_kind']} per kind, one secret each); detect-secrets {result['versions']['detect_secrets']}.",
           "", "## Recall on planted secrets", "",
           "| kind | our kind | planted | ours | detect-secrets | d-s w/o entropy | ours: fully redacted |",
           "|---|---|---|---|---|---|---|"]
    for kind, r in p["by_kind"].items():
        out.append(f"| {kind} | {'yes' if r['in_our_kinds'] else 'no'} | {r['planted']} | {_pct(r['ours'])} | "
                   f"{_pct(r['detect_secrets'])} | {_pct(r['detect_secrets_no_entropy'])} | {_pct(r['ours_redacted'])} |")
    t, to = p["total"], p["total_our_kinds_only"]
    out.append(f"| **our kinds** | | {to['planted']} | {_pct(to['ours'])} | {_pct(to['detect_secrets'])} | | |")
    out.append(f"| **all** | | {t['planted']} | {_pct(t['ours'])} | {_pct(t['detect_secrets'])} | | |")
    out += ["", *(f"*{k}*: {v}." for k, v in DEFINITIONS.items() if k != "false positive")]
    out += ["", "## Recall by position", "", "| position / layout | planted | ours | detect-secrets |", "|---|---|---|---|"]
    layouts = [k for k in sorted(p["by_layout"]) if k not in p["by_position"]]
    for key in list(p["by_position"]) + layouts:
        r = p["by_position"].get(key) or p["by_layout"][key]
        out.append(f"| {key} | {r['planted']} | {_pct(r['ours'])} | {_pct(r['detect_secrets'])} |")
    out += ["", "## Found per kind and position (ours / detect-secrets, of planted)", "",
            "| kind | " + " | ".join(POSITIONS) + " |", "|---|" + "---|" * len(POSITIONS)]
    for kind in p["by_kind"]:
        cells = [p["by_kind_position"].get(f"{kind}/{pos}") for pos in POSITIONS]
        out.append(f"| {kind} | " + " | ".join(
            f"{r['ours']['found']} / {r['detect_secrets']['found']} of {r['planted']}" if r else "-" for r in cells) + " |")
    out += ["", "## Variants either detector misses", "",
            "| kind / variant | planted | ours | detect-secrets |", "|---|---|---|---|"]
    for key, r in sorted(p["by_variant"].items()):
        if r["ours"]["found"] < r["planted"] or r["detect_secrets"]["found"] < r["planted"]:
            out.append(f"| {key} | {r['planted']} | {_pct(r['ours'])} | {_pct(r['detect_secrets'])} |")
    out += ["", f"## Flags on the {c['files']} un-planted files (false positives)", "",
            "| | ours | detect-secrets | d-s w/o entropy |", "|---|---|---|---|",
            f"| files flagged | {_pct(c['ours'])} | {_pct(c['detect_secrets'])} | {_pct(c['detect_secrets_no_entropy'])} |",
            "", "ours by kind: " + (", ".join(f"{k} {v}" for k, v in sorted(c["ours_by_kind"].items())) or "none"),
            "", "detect-secrets files by type: "
            + ", ".join(f"{k} {v}" for k, v in sorted(c["detect_secrets_files_by_type"].items(), key=lambda kv: -kv[1])),
            "", "Our flags:" + ("" if c["ours_examples"] else " none.")] + [
            f"- `{e['file']}`: {e['kind']}: `{e['line'][:100]}`" for e in c["ours_examples"]] + [
            "", "detect-secrets flags other than high-entropy strings (first few):"] + [
            f"- `{e['file']}:{e['line']}`: {e['type']} `{e['value']}`" for e in c["detect_secrets_examples_no_entropy"][:10]
            ] + ["", "## Agreement (files)", "", "| files | both | only ours | only detect-secrets | neither |",
            "|---|---|---|---|---|"]
    for label, a in (("planted, our kinds", to["agreement"]), ("planted, all kinds", t["agreement"]),
                     ("un-planted", c["agreement"]), ("un-planted, d-s w/o entropy", c["agreement_no_entropy"])):
        out.append(f"| {label} | {a['both']} | {a['only_ours']} | {a['only_detect_secrets']} | {a['neither']} |")
    out += ["", (f"Spark/Python parity of our decision: {result['parity']['disagreements']} disagreements "
                 f"on {result['parity']['files']} files. Seconds: {result['seconds']}."), ""]
    return "\n".join(out)


# --------------------------------------------------------------------------------------- main


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=3000, help="real files sampled")
    ap.add_argument("--per-kind", type=int, default=60, help="planted copies per kind (spread over positions)")
    ap.add_argument("--seed", type=int, default=20261129)
    ap.add_argument("--max-bytes", type=int, default=48000, help="largest file sampled (detect-secrets is slow)")
    ap.add_argument("--workers", type=int, default=2, help="detect-secrets processes")
    ap.add_argument("--examples", type=int, default=25, help="flagged un-planted findings listed")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    return ap.parse_args(argv)


def run(args, command: str) -> dict:
    timer, started = {}, time.perf_counter()
    sources = sample_files(args.files, args.seed, args.max_bytes)
    spark, tmp = spark_session(), Path(tempfile.mkdtemp(prefix="bench-secrets-"))
    try:
        from codecorpus.stages.clean.secrets import SECRET_KINDS

        py = PythonDecision()
        t = time.perf_counter()
        texts = {s.fid: s.text for s in sources}
        ours = scan_ours(spark, tmp, texts)
        timer["ours_clean"] = time.perf_counter() - t
        t = time.perf_counter()
        ds = scan_detect_secrets(write_files(tmp / "clean", [(s.fid, s.rel, s.text) for s in sources]), args.workers)
        timer["detect_secrets_clean"] = time.perf_counter() - t

        hosts = [s.fid for s in sources if not ours[s.fid]["flag"] and not ds[s.fid]]
        planted = plant_all(sources, hosts, args.per_kind, args.seed)
        ptexts = {p.fid: p.text for p in planted}
        t = time.perf_counter()
        pours = scan_ours(spark, tmp, ptexts)
        timer["ours_planted"] = time.perf_counter() - t
        t = time.perf_counter()
        pds = scan_detect_secrets(write_files(tmp / "planted", [(p.fid, sources[p.host].rel, p.text)
                                                                for p in planted]), args.workers)
        timer["detect_secrets_planted"] = time.perf_counter() - t
        outcomes = [planted_outcome(p, pours[p.fid], pds[p.fid]) for p in planted]
        both_texts = {**texts, **ptexts}
        return {
            "date": datetime.date.today().isoformat(), "command": command, "args": vars(args),
            "versions": versions(),
            "sample": {"files": len(sources), "by_origin": dict(Counter(s.origin for s in sources)),
                       "bytes": sum(len(s.text.encode()) for s in sources), "hosts_clean_for_both": len(hosts),
                       "sha256_of_paths": hashlib.sha256("\n".join(f"{s.origin}/{s.rel}" for s in sources)
                                                         .encode()).hexdigest()},
            "planted": summarize_planted(outcomes, SECRET_KINDS),
            "clean": summarize_clean(sources, ours, ds, py, args.examples),
            "parity": parity(both_texts, {**ours, **pours}, py),
            "misses": misses(outcomes, planted),
            "definitions": DEFINITIONS,
            "outcomes": outcome_rows(sources, planted, outcomes),
            "seconds": {k: round(v, 1) for k, v in {**timer, "total": time.perf_counter() - started}.items()},
        }
    finally:
        spark.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def misses(outcomes: list[dict], planted: list[Planted], limit: int = 3) -> dict:
    """A few planted lines per (kind, variant, layout) that a detector missed, to read."""
    out = {"ours": defaultdict(list), "detect_secrets": defaultdict(list)}
    for o, p in zip(outcomes, planted):
        lines = p.text.split("\n")[p.first_line - 1:p.last_line]
        shown = (lines[0] if len(lines) == 1 else lines[0] + f" ... ({len(lines)} lines)").strip()[:200]
        for who, hit in (("ours", o["ours"]), ("detect_secrets", o["ds"])):
            key = f"{o['kind']}/{o['variant']}/{o['layout']}"
            if not hit and len(out[who][key]) < limit:
                out[who][key].append(shown)
    return {who: dict(sorted(v.items())) for who, v in out.items()}


def versions() -> dict:
    from importlib.metadata import version

    return {"python": platform.python_version(), "pyspark": version("pyspark"),
            "detect_secrets": version("detect-secrets")}


OUTCOME_COLUMNS = ["host", "first_line", "last_line", "kind", "variant", "position", "layout", "name", "ours",
                   "ours_kind", "ours_redacted", "ds", "ds_no_entropy", "ds_types"]


def outcome_rows(sources: list[Source], planted: list[Planted], outcomes: list[dict]) -> dict:
    """Every planted copy's outcome, as rows under one header (the file stays small)."""
    rows = []
    for p, o in zip(planted, outcomes):
        full = {**o, "host": f"{sources[p.host].origin}/{sources[p.host].rel}", "first_line": p.first_line,
                "last_line": p.last_line}
        rows.append([full[c] for c in OUTCOME_COLUMNS])
    return {"columns": OUTCOME_COLUMNS, "rows": rows}


def to_json(result: dict) -> str:
    """Indented, except the outcome rows: one compact line each."""
    head = json.dumps({k: v for k, v in result.items() if k != "outcomes"}, indent=1)
    rows = ",\n".join("   " + json.dumps(r, separators=(",", ":")) for r in result["outcomes"]["rows"])
    return (head[:-2] + ',\n "outcomes": {\n  "columns": ' + json.dumps(OUTCOME_COLUMNS)
            + ',\n  "rows": [\n' + rows + "\n  ]\n }\n}\n")


def main(argv=None) -> int:
    args = parse_args(argv)
    command = "flock /tmp/cc-tests.lock .venv/bin/python bench/secrets_recall.py " + " ".join(argv or sys.argv[1:])
    result = run(args, command.strip())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"secrets-{result['date']}"
    stem.with_suffix(".json").write_text(to_json(result))
    md = markdown(result)
    stem.with_suffix(".md").write_text(md)
    print(md)
    print(f"wrote {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
