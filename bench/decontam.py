"""Decontamination, measured: recall of exact-substring vs token n-gram matching on HumanEval
functions planted into real files three ways, and the false positives of each on real files with
nothing planted.

1. Sample real .py files (--files, seeded) from the default corpus: the shards make_corpus wrote
   from this Python's standard library and site-packages (--corpus, data/corpus by default).
2. Run the clean stage's own matcher (`decontam.contamination_udf`, exact and n-gram, with the
   default settings or --set overrides) over them in a local Spark session: every flag there is a
   false positive (the sample has nothing planted; flagged files are listed).
3. Plant each of HumanEval's 164 functions (prompt + canonical solution) into a host drawn from
   the files neither method flagged, between two top-level statements, three ways:
   - verbatim;
   - renamed: every name the function binds (its name, arguments, locals, loop, comprehension and
     exception variables, nested functions) renamed consistently, wherever it is used (attribute
     names after "." are left alone; the docstring is kept as it is);
   - reformatted: re-emitted from its tokens in another layout, drawn per function: 2-space, tab
     or 3-space indents, either no blanks around operators and after commas or blanks between
     all tokens, every logical line on one physical line, the signature exploded one parameter a
     line with a trailing comma (as black does), comments dropped.
   Every variant is checked to compile.
4. Run the same UDF over the planted files: recall per way and method (and among the problems
   the n-gram method has an item for: items with fewer than decontam_min_ngrams distinct
   n-grams are left to exact matching).
5. --full (default): both matchers over every file of the default corpus, in --workers processes
   (the same classes, without Spark), for the false positives the default config would add to a
   run of `make run`, and the closest any real file comes to an n-gram item.

    flock /tmp/cc-tests.lock .venv/bin/python bench/decontam.py [--files 3000] [--seed 20261201]
        [--corpus data/corpus] [--no-full] [--workers 2] [--set clean.decontam_overlap=0.8]
        [--json out.json]
"""
from __future__ import annotations

import argparse
import ast
import glob
import gzip
import io
import json
import multiprocessing
import os
import random
import sys
import time
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

WAYS = ("verbatim", "renamed", "reformatted")
WORDS = ("value", "item", "acc", "buf", "cur", "data", "entry", "key", "node", "part", "res", "seq", "tmp",
         "total", "width", "word", "xs", "ys", "left", "right", "count", "flag", "best", "step")

# ----------------------------------------------------------------------------------- sampling


def corpus_files(corpus: str) -> list[dict]:
    """Every record of the default corpus shards, in shard order: {"key", "text"}."""
    shards = sorted(glob.glob(os.path.join(corpus, "*.json.gz")))
    if not shards:
        raise SystemExit(f"no shards under {corpus}: run `make corpus` (jobs/make_corpus.py) first")
    out = []
    for shard in shards:
        with gzip.open(shard, "rt", encoding="utf-8", errors="replace") as f:
            for line in f:
                rec = json.loads(line)
                out.append({"key": f"{rec['repo_name']}/{rec['path']}", "text": rec["content"]})
    return out


def sample(files: list[dict], n: int, seed: int, max_bytes: int) -> list[dict]:
    small = [f for f in files if f["key"].endswith(".py") and len(f["text"].encode()) <= max_bytes]
    return random.Random(f"{seed}:sample").sample(small, min(n, len(small)))


# ---------------------------------------------------------------------------------- renaming


def bound_names(tree: ast.AST) -> list[str]:
    """Names a function binds, in order of first appearance (imports are not renamed)."""
    seen: dict[str, tuple] = {}

    def add(name, node):
        seen.setdefault(name, (node.lineno, node.col_offset))

    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            add(node.name, node)
        elif isinstance(node, ast.arg):
            add(node.arg, node)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            add(node.id, node)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            add(node.name, node)
    return sorted(seen, key=seen.get)


def rename(code: str, rng: random.Random) -> str:
    """`code` with its bound names renamed consistently (token positions, right to left)."""
    names = bound_names(ast.parse(code))
    new = {old: f"{rng.choice(WORDS)}_{k}" for k, old in enumerate(names)}
    lines = code.splitlines(keepends=True)
    tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    edits = []
    for prev, tok in zip([None] + tokens, tokens):
        if tok.type == tokenize.NAME and tok.string in new and not (prev and prev.string == "."):
            edits.append(tok)
    for tok in reversed(edits):
        (row, col), (_, end) = tok.start, tok.end
        line = lines[row - 1]
        lines[row - 1] = line[:col] + new[tok.string] + line[end:]
    return "".join(lines)


# ------------------------------------------------------------------------------ reformatting

SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER, tokenize.TYPE_COMMENT}
WORDLIKE = {tokenize.NAME, tokenize.NUMBER, tokenize.STRING}


def logical_lines(code: str) -> list[tuple[int, list[tokenize.TokenInfo]]]:
    """(indent depth, tokens) of each logical line, comments and line breaks dropped."""
    out, depth, current = [], 0, []
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.INDENT:
            depth += 1
        elif tok.type == tokenize.DEDENT:
            depth -= 1
        elif tok.type == tokenize.NEWLINE:
            if current:
                out.append((depth, current))
            current = []
        elif tok.type not in SKIP:
            current.append(tok)
    return out


def joined(tokens: list, loose: bool) -> str:
    """Tokens on one line: blanks between all of them (loose), or only where two words meet."""
    out = []
    for prev, tok in zip([None] + tokens, tokens):
        if prev is not None and (loose or (prev.type in WORDLIKE and tok.type in WORDLIKE)):
            out.append(" ")
        out.append(tok.string)
    return "".join(out)


def exploded_def(tokens: list, unit: str, depth: int, loose: bool) -> str | None:
    """A `def` line with one parameter a line and a trailing comma, or None for other lines."""
    names = [t.string for t in tokens]
    if "def" not in names[:2] or "(" not in names:
        return None
    start, level = names.index("("), 0
    for end in range(start, len(tokens)):
        level += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(names[end], 0)
        if level == 0:
            break
    params, part, level = [], [], 0
    for tok in tokens[start + 1:end]:
        level += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(tok.string, 0)
        if tok.string == "," and level == 0:
            params.append(part)
            part = []
        else:
            part.append(tok)
    params = [p for p in params + [part] if p]
    if not params:
        return None
    inner = unit * (depth + 1)
    body = "".join(f"{inner}{joined(p, loose)},\n" for p in params)
    return f"{unit * depth}{joined(tokens[:start + 1], loose)}\n{body}{unit * depth}{joined(tokens[end:], loose)}"


def reformat(code: str, rng: random.Random) -> str:
    unit, loose = rng.choice(("  ", "\t", "   ")), rng.random() < 0.5
    lines = []
    for depth, tokens in logical_lines(code):
        line = exploded_def(tokens, unit, depth, loose)
        lines.append(line if line is not None else unit * depth + joined(tokens, loose))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------- planting


def top_level_offsets(text: str) -> list[int]:
    """Character offsets where a top-level statement starts (and the end): where a function
    can go without breaking the host."""
    tree = ast.parse(text)
    starts = {0, len(text)}
    line_starts = [0]
    for line in text.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    for node in tree.body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        starts.add(line_starts[first - 1])
    return sorted(starts)


def plant(host: str, code: str, rng: random.Random) -> str:
    at = rng.choice(top_level_offsets(host))
    before = host[:at] if not at or host[:at].endswith("\n") else host[:at] + "\n"
    return f"{before}\n\n{code}\n\n{host[at:]}"


def variants(problems: list[dict], hosts: list[dict], seed: int) -> list[dict]:
    """Each problem's function, planted three ways, each into its own seeded host."""
    out = []
    for p in problems:
        code = p["prompt"] + p["canonical_solution"]
        for way in WAYS:
            rng = random.Random(f"{seed}:{p['task_id']}:{way}")
            text = {"verbatim": code, "renamed": rename(code, rng), "reformatted": reformat(code, rng)}[way]
            compile(text, f"{p['task_id']} {way}", "exec")
            host = rng.choice(hosts)
            out.append({"key": f"{p['task_id']} {way} in {host['key']}", "task_id": p["task_id"], "way": way,
                        "text": plant(host["text"], text, rng)})
    return out


def parses(text: str) -> bool:
    try:
        ast.parse(text)
        return True
    except (SyntaxError, ValueError, RecursionError):
        return False


# ---------------------------------------------------------------------------------- matching


def stage_udf_methods(spark, files: list[dict], needles: list[str], items) -> list[str | None]:
    """What the clean stage's contamination UDF says of each file ("exact", "ngram",
    "exact+ngram" or None), run in Spark as the stage runs it."""
    from codecorpus.stages.clean.decontam import contamination_udf
    from pyspark.sql import functions as F

    df = spark.createDataFrame([(i, f["text"]) for i, f in enumerate(files)], "i INT, content STRING")
    udf = contamination_udf(needles, items)
    rows = df.repartition(4, "i").select("i", udf(F.col("content")).alias("m")).collect()
    found = {r["i"]: r["m"] for r in rows}
    return [found[i] for i in range(len(files))]


def throughput(files: list[dict], needles: list[str], items) -> dict:
    """MB/s of each matcher on one core, in this process (what an executor core does)."""
    from codecorpus.stages.clean.decontam import Matcher
    from codecorpus.stages.clean.ngrams import NgramMatcher

    texts = [f["text"] for f in files]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    out = {}
    for name, fn in (("exact", Matcher(needles).contains_any), ("ngram", NgramMatcher(items).first_match)):
        started = time.process_time()
        for t in texts:
            fn(t)
        out[f"{name}_mb_s"] = round(mb / (time.process_time() - started), 1)
    return out


def _scan_shards(args: tuple) -> list[dict]:
    """One worker of the full scan: flags and the closest n-gram share of every file."""
    shards, needles, items = args
    from codecorpus.stages.clean.decontam import Matcher
    from codecorpus.stages.clean.ngrams import NgramMatcher

    exact, ngram = Matcher(needles), NgramMatcher(items)
    out = []
    for shard in shards:
        with gzip.open(shard, "rt", encoding="utf-8", errors="replace") as f:
            for line in f:
                rec = json.loads(line)
                text = rec["content"]
                shares = ngram.shares(text, 0.5)
                best = max(shares.items(), key=lambda kv: (kv[1], -kv[0]), default=(None, 0.0))
                out.append({"key": f"{rec['repo_name']}/{rec['path']}", "bytes": len(text.encode()),
                            "exact": exact.contains_any(text), "ngram": ngram.first_match(text) is not None,
                            "best_share": round(best[1], 3),
                            "best_item": items.names[best[0]] if best[0] is not None else None})
    return out


def full_scan(corpus: str, needles: list[str], items, workers: int) -> dict:
    shards = sorted(glob.glob(os.path.join(corpus, "*.json.gz")))
    parts = [(shards[k::workers], needles, items) for k in range(workers)]
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        rows = [r for part in pool.map(_scan_shards, parts) for r in part]
    closest = sorted((r for r in rows if r["best_item"]), key=lambda r: (-r["best_share"], r["key"]))[:5]
    return {"files": len(rows), "mb": round(sum(r["bytes"] for r in rows) / 1e6, 1),
            "seconds": round(time.perf_counter() - started, 1), "workers": workers,
            "flagged_exact": sorted(r["key"] for r in rows if r["exact"]),
            "flagged_ngram": sorted(r["key"] for r in rows if r["ngram"]),
            "flagged_ngram_only": sorted(r["key"] for r in rows if r["ngram"] and not r["exact"]),
            "closest_to_an_ngram_item": [{k: r[k] for k in ("key", "best_share", "best_item")} for r in closest]}


# ----------------------------------------------------------------------------------- figures


def recall(planted: list[dict], methods: list, eligible: set[str]) -> dict:
    out = {}
    for way in WAYS:
        rows = [(p, m or "") for p, m in zip(planted, methods) if p["way"] == way]
        ex = sum("exact" in m for _, m in rows)
        ng = sum("ngram" in m for _, m in rows)
        ng_el = sum("ngram" in m for p, m in rows if p["task_id"] in eligible)
        out[way] = {"planted": len(rows), "exact": ex, "ngram": ng, "either": sum(bool(m) for _, m in rows),
                    "ngram_eligible": sum(p["task_id"] in eligible for p, _ in rows), "ngram_of_eligible": ng_el}
    return out


def eligible_problems(items) -> set[str]:
    """Problems the n-gram method has an item for (its function or its solution)."""
    return {name.split(" ")[0] for name in items.names}


def render(res: dict) -> str:
    s, fp = res["settings"], res["sample"]
    head = (f"n = {s['n']}, overlap = {s['overlap']}, min_ngrams = {s['min_ngrams']}; {s['items']} n-gram items; "
            f"{s['eligible_problems']} of 164 problems have one")
    lines = [head, "", "| way | planted | exact | ngram | either | ngram, of problems with an item |",
             "|---|---|---|---|---|---|"]
    for way, r in res["recall"].items():
        cells = [way, r["planted"]] + [f"{r[k]} ({r[k] / r['planted']:.1%})" for k in ("exact", "ngram", "either")]
        lines.append("| " + " | ".join(map(str, cells)) + f" | {r['ngram_of_eligible']} of {r['ngram_eligible']} |")
    t = res["throughput"]
    lines += ["", (f"False positives on the sample ({fp['files']} files, {fp['mb']} MB, nothing planted): "
                   f"exact {len(fp['flagged_exact'])}, ngram {len(fp['flagged_ngram'])}"),
              f"Throughput, one core: exact {t['exact_mb_s']} MB/s, ngram {t['ngram_mb_s']} MB/s"]
    if "full" in res:
        f = res["full"]
        lines.append(f"Full default corpus ({f['files']} files, {f['mb']} MB, {f['seconds']} s on {f['workers']} "
                     f"processes): exact {len(f['flagged_exact'])}, ngram {len(f['flagged_ngram'])} "
                     f"(ngram only {len(f['flagged_ngram_only'])})")
        lines.append("Closest real files to an n-gram item:")
        lines += [f"  {c['best_share']:.3f} {c['best_item']}: {c['key']}" for c in f["closest_to_an_ngram_item"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default=str(ROOT / "data" / "corpus"))
    ap.add_argument("--files", type=int, default=3000, help="real files sampled (hosts and false positives)")
    ap.add_argument("--max-bytes", type=int, default=100_000, help="largest sampled file")
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--set", action="append", default=[], help="config overrides, e.g. clean.decontam_overlap=0.7")
    ap.add_argument("--no-full", action="store_true", help="skip the scan of the whole default corpus")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)

    from codecorpus.core.config import load_config
    from codecorpus.core.spark import local_session
    from codecorpus.io.benchmarks import records
    from codecorpus.stages.clean.stage import load_needles, load_ngrams

    c = load_config(None, args.set).clean
    needles, _ = load_needles(c)
    items, info = load_ngrams(c)
    started = time.perf_counter()
    files = sample(corpus_files(args.corpus), args.files, args.seed, args.max_bytes)
    spark = local_session("bench-decontam", "local[2]", {"spark.sql.shuffle.partitions": "4"})
    flags = stage_udf_methods(spark, files, needles, items)
    hosts = [f for f, m in zip(files, flags) if m is None and parses(f["text"])]
    planted = variants(records("humaneval"), hosts, args.seed)
    methods = stage_udf_methods(spark, planted, needles, items)
    spark.stop()
    res = {"command": "bench/decontam.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "settings": dict(info, eligible_problems=len(eligible_problems(items)), seed=args.seed),
           "recall": recall(planted, methods, eligible_problems(items)),
           "sample": {"files": len(files), "mb": round(sum(len(f["text"].encode()) for f in files) / 1e6, 1),
                      "flagged_exact": sorted(f["key"] for f, m in zip(files, flags) if m and "exact" in m),
                      "flagged_ngram": sorted(f["key"] for f, m in zip(files, flags) if m and "ngram" in m)},
           "missed": {w: sorted(p["task_id"] for p, m in zip(planted, methods) if p["way"] == w and not m)
                      for w in WAYS},
           "throughput": throughput(files, needles, items)}
    if not args.no_full:
        res["full"] = full_scan(args.corpus, needles, items, args.workers)
    res["seconds"] = round(time.perf_counter() - started, 1)
    print(render(res))
    print(f"({res['seconds']} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
