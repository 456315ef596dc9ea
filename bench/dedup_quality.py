"""Quality of the near-dedup stage against exact Jaccard similarity, and against datasketch.

A seeded sample of a stage's Parquet output (ingest or clean) plus synthetic near-copies of
some of its files (renamed identifiers, edited comments, reformatted whitespace, an appended
function) goes through the stage's own code (signatures in Spark, band buckets, verification,
connected components). Ground truth is brute force: the exact Jaccard similarity of the
shingle sets of *every* pair (a sparse doc x shingle product). Reported, as precision and
recall of duplicate pairs (exact Jaccard >= threshold):
  - LSH candidates (pairs sharing a band bucket), before and after signature verification;
  - pairs inside the final clusters (transitive, as dedup acts on clusters);
  - datasketch.MinHashLSH on the same shingles, and the overlap of its pairs with ours.

    .venv/bin/python bench/dedup_quality.py --input /tmp/me/out/ingest [--sample 2000] [--copies 400]
"""
from __future__ import annotations

import argparse
import glob
import itertools
import json
import os
import random
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from codecorpus.core.config import Config  # noqa: E402
from codecorpus.stages.dedup import shingles  # noqa: E402
from codecorpus.stages.dedup.clusters import (  # noqa: E402
    candidate_edges,
    signature_frame,
    verified_edges,
)
from codecorpus.stages.dedup.components import connected_components  # noqa: E402
from codecorpus.stages.dedup.stage import params_for  # noqa: E402
from dedup_reference import shingle_strings  # noqa: E402

KEYWORDS = {"def", "class", "return", "import", "from", "for", "while", "if", "else", "elif", "in", "not",
            "and", "or", "is", "None", "True", "False", "self", "try", "except", "with", "as", "pass"}


# ----------------------------------------------------------------------------- near-copy edits
def rename_identifiers(src: str, rng: random.Random) -> str:
    names = sorted({t for t in shingles.tokens(src) if len(t) >= 3 and not t[0].isdigit() and t not in KEYWORDS})
    for name in rng.sample(names, min(2, len(names))):
        src = re.sub(rf"\b{re.escape(name)}\b", name + "_renamed", src)
    return src


def edit_comments(src: str, rng: random.Random) -> str:
    lines = src.split("\n")
    comments = [i for i, line in enumerate(lines) if line.lstrip().startswith("#")]
    for i in rng.sample(comments, min(3, len(comments))):
        lines[i] = lines[i][:len(lines[i]) - len(lines[i].lstrip())] + "# note: behaviour changed here"
    if not comments:
        lines.insert(0, "# Copyright the contributors; see LICENSE for details")
    return "\n".join(lines)


def reformat_whitespace(src: str, rng: random.Random) -> str:
    src = re.sub(r"^((?:    )+)", lambda m: "  " * (len(m.group(1)) // 4), src, flags=re.M)
    return re.sub(r" *([=,:]) *", r"\1 ", src) + "\n\n"


def append_function(src: str, rng: random.Random) -> str:
    name = "".join(rng.choice("abcdefghij") for _ in range(8))
    return src + (f"\n\ndef {name}(items, limit=10):\n    \"\"\"Return the first items.\"\"\"\n"
                  "    result = []\n    for item in items[:limit]:\n        result.append(item)\n"
                  "    return result\n")


EDITS = [rename_identifiers, edit_comments, reformat_whitespace, append_function]


# ----------------------------------------------------------------------------- data
def load_sample(folder: str, n: int, seed: int) -> list[tuple[int, str]]:
    files = sorted(glob.glob(os.path.join(folder, "**", "*.parquet"), recursive=True))
    if not files:
        raise SystemExit(f"no Parquet files under {folder}")
    table = pa.concat_tables(pq.read_table(f, columns=["id", "content"]) for f in files)
    rows = [(i, c) for i, c in zip(table.column("id").to_pylist(), table.column("content").to_pylist()) if c]
    rows.sort()
    return random.Random(seed).sample(rows, min(n, len(rows)))


def with_near_copies(sample: list[tuple[int, str]], copies: int, seed: int, min_tokens: int):
    rng = random.Random(seed + 1)
    eligible = [r for r in sample if len(shingles.tokens(r[1])) >= 4 * min_tokens]
    made = []
    for k, (doc_id, text) in enumerate(rng.sample(eligible, min(copies, len(eligible)))):
        edit = EDITS[k % len(EDITS)]
        made.append((-(k + 1), edit(text, rng), doc_id, edit.__name__))
    return sample + [(i, t) for i, t, _, _ in made], made


# ----------------------------------------------------------------------------- ground truth
def exact_similarities(docs: list[tuple[int, str]], ngram: int, min_tokens: int):
    """(ids, shingle sets as hashes, all pairs with any shared shingle -> exact Jaccard)."""
    from scipy import sparse

    ids, sets = [], []
    for doc_id, text in docs:
        toks = shingles.tokens(text)
        if len(toks) < min_tokens:
            continue
        ids.append(doc_id)
        sets.append(shingles.shingle_hashes(shingles.token_hashes(toks), ngram))
    vocab = {h: j for j, h in enumerate(np.unique(np.concatenate(sets)))}
    rows = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    cols = np.fromiter((vocab[h] for s in sets for h in s), dtype=np.int64, count=len(rows))
    x = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(len(sets), len(vocab)))
    inter = sparse.triu(x @ x.T, k=1).tocoo()
    sizes = np.array([len(s) for s in sets])
    sim = inter.data / (sizes[inter.row] + sizes[inter.col] - inter.data)
    pairs = {_pair(ids[a], ids[b]): float(s) for a, b, s in zip(inter.row, inter.col, sim)}
    return ids, sets, pairs


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def precision_recall(found: set, truth: set) -> dict:
    tp = len(found & truth)
    return {"pairs": len(found), "true_positives": tp,
            "precision": round(tp / len(found), 4) if found else None,
            "recall": round(tp / len(truth), 4) if truth else None}


# ----------------------------------------------------------------------------- ours and datasketch
def ours(spark, docs, cfg: Config):
    params, shape, dc = params_for(cfg)
    df = spark.createDataFrame(docs, "id BIGINT, content STRING")
    started = time.perf_counter()
    sigs = signature_frame(df, params).localCheckpoint(eager=True)
    rows = [r for r in sigs.select("id", "keys", "sig").collect() if r["keys"] is not None]  # null: too short
    buckets = defaultdict(list)
    for r in rows:
        for band, key in enumerate(r["keys"]):
            buckets[(band, key)].append(r["id"])
    candidates = {_pair(a, b) for members in buckets.values() for a, b in itertools.combinations(members, 2)}
    sig_of = {r["id"]: np.array(r["sig"]) for r in rows}
    verified = {p for p in candidates if (sig_of[p[0]] == sig_of[p[1]]).mean() >= dc.threshold}
    edges = candidate_edges(sigs)
    if dc.verify:
        edges = verified_edges(edges, sigs, dc.threshold)
    comps, rounds = connected_components(edges, dc.max_cc_iterations)
    groups = defaultdict(list)
    for r in comps.collect():
        groups[r["component"]].append(r["id"])
    clustered = {_pair(a, b) for m in groups.values() for a, b in itertools.combinations(sorted(m), 2)}
    return dict(shape=shape, candidates=candidates, verified=verified, clustered=clustered,
                seconds=time.perf_counter() - started, rounds=rounds)


def datasketch_pairs(docs, cfg: Config, min_tokens: int):
    """Pairs datasketch.MinHashLSH reports for the same shingles (its own hashing and shape)."""
    from datasketch import MinHash, MinHashLSH

    dc = cfg.dedup.resolved()
    lsh = MinHashLSH(threshold=dc.threshold, num_perm=dc.num_perm)
    started = time.perf_counter()
    sketches = {}
    for doc_id, text in docs:
        if len(shingles.tokens(text)) < min_tokens:
            continue
        m = MinHash(num_perm=dc.num_perm, seed=dc.seed)
        m.update_batch([s.encode() for s in shingle_strings(text, dc.ngram)])
        lsh.insert(doc_id, m)
        sketches[doc_id] = m
    pairs = {_pair(doc_id, other) for doc_id, m in sketches.items() for other in lsh.query(m) if other != doc_id}
    return pairs, time.perf_counter() - started, (lsh.b, lsh.r)


def synthetic_recall(made: list[tuple], truth: set, clustered: set) -> dict:
    """Per edit: near-copies made, those at or above the threshold, and those of them clustered
    with their source."""
    synthetic: dict[str, dict] = {}
    for new_id, _, src_id, edit in made:
        p = _pair(new_id, src_id)
        cell = synthetic.setdefault(edit, {"copies": 0, "above_threshold": 0, "found": 0})
        cell["copies"] += 1
        if p in truth:
            cell["above_threshold"] += 1
            cell["found"] += p in clustered
    return synthetic


def agreement(got: dict, ds_pairs: set) -> dict:
    """How far our pairs (verified, and raw candidates) and datasketch's coincide."""
    verified, candidates = got["verified"], got["candidates"]
    return {"ours_verified_and_datasketch": len(verified & ds_pairs),
            "only_ours": len(verified - ds_pairs), "only_datasketch": len(ds_pairs - verified),
            "jaccard_of_pair_sets": round(len(verified & ds_pairs) / max(1, len(verified | ds_pairs)), 4),
            "candidates_jaccard_of_pair_sets": round(len(candidates & ds_pairs)
                                                     / max(1, len(candidates | ds_pairs)), 4)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", default=str(ROOT / "out" / "ingest"), help="a stage's Parquet output folder")
    ap.add_argument("--sample", type=int, default=2000, help="files drawn from the input")
    ap.add_argument("--copies", type=int, default=400, help="synthetic near-copies added")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override, e.g. --set dedup.preset=codeparrot")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)

    from codecorpus.core.config import load_config

    cfg = load_config(None, args.overrides)
    dc = cfg.dedup.resolved()
    sample = load_sample(args.input, args.sample, args.seed)
    docs, made = with_near_copies(sample, args.copies, args.seed, dc.min_tokens)
    print(f"{len(sample)} sampled files + {len(made)} near-copies; {dc.ngram}-grams, threshold {dc.threshold}, "
          f"{dc.num_perm} permutations, verify={dc.verify}", flush=True)

    started = time.perf_counter()
    ids, _, sims = exact_similarities(docs, dc.ngram, dc.min_tokens)
    truth = {p for p, s in sims.items() if s >= dc.threshold}
    brute_seconds = time.perf_counter() - started

    spark = _spark()
    got = ours(spark, docs, cfg)
    ds_pairs, ds_seconds, ds_shape = datasketch_pairs(docs, cfg, dc.min_tokens)

    exact_of = lambda pairs: [sims.get(p, 0.0) for p in pairs]  # noqa: E731
    result = {
        "files": len(docs), "hashed": len(ids), "pairs_total": len(ids) * (len(ids) - 1) // 2,
        "true_pairs": len(truth), "brute_force_seconds": round(brute_seconds, 2),
        "shape": {"bands": got["shape"].bands, "rows": got["shape"].rows}, "datasketch_shape": ds_shape,
        "candidates": precision_recall(got["candidates"], truth),
        "verified": precision_recall(got["verified"], truth),
        "clusters": precision_recall(got["clustered"], truth),
        "datasketch": precision_recall(ds_pairs, truth),
        "agreement_with_datasketch": agreement(got, ds_pairs),
        "verified_false_positives_median_exact_jaccard": _median(exact_of(got["verified"] - truth)),
        "clusters_false_positives_median_exact_jaccard": _median(exact_of(got["clustered"] - truth)),
        "synthetic_near_copies": synthetic_recall(made, truth, got["clustered"]),
        "cc_rounds": got["rounds"],
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    spark.stop()
    return result


def _median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 4) if values else None


def _spark():
    from codecorpus.core.spark import local_session

    return local_session("bench-dedup", os.environ.get("BENCH_MASTER", "local[2]"),
                         {"spark.sql.shuffle.partitions": "8", "spark.driver.memory": "6g"})


if __name__ == "__main__":
    main()
