"""Run every stage bench against its peer in one run, write bench/results/<date>.json and
regenerate docs/PERFORMANCE.md.

    .venv/bin/python bench/run_all.py [--corpus data/corpus] [--quick] [--repeats 3]
        [--only limits,ingest,clean,dedup,tokenizer,tokenize] [--scaling]
    .venv/bin/python bench/run_all.py --render bench/results/<date>.json   # the doc only

Each bench runs as its own child process (each builds its own SparkSession, some measure peak
RSS per process). Pairs of ours/peer are interleaved inside the bench scripts, or, where a
script measures one pair per call, by calling it --repeats times; ratios are taken pair by pair
and the median reported. --quick uses the first few shards and small samples so the whole run
fits in minutes on a loaded 2-core machine; without it the whole corpus is used. --scaling also
runs bench/scaling.py (long); otherwise the newest bench/results/scaling-*.json is shown.
"""
from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
DOC = ROOT / "docs" / "PERFORMANCE.md"
PY = sys.executable
STAGES = ["limits", "ingest", "ingest_real", "clean", "dedup", "dedup_quality", "tokenizer", "tokenize"]


def log(msg: str) -> None:
    print(f"[run_all {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(cmd: list[str], logfile: Path, timeout: float | None = None) -> str:
    """Run a bench child; its output goes to logfile and is returned. A failure is recorded, not fatal."""
    log(" ".join(str(c) for c in cmd))
    env = dict(os.environ, PYSPARK_PYTHON=PY, PYSPARK_DRIVER_PYTHON=PY)
    done = subprocess.run([str(c) for c in cmd], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=timeout)
    with open(logfile, "a") as f:
        f.write(f"$ {' '.join(map(str, cmd))}\n{done.stdout}\n{done.stderr}\n")
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:] or ''} (log {logfile})")
    return done.stdout


def machine() -> dict:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), platform.processor())
    mem = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
    return {"cpu": model, "cores": os.cpu_count(), "ram_gib": round(mem / 2**20, 1),
            "python": platform.python_version(), "host": platform.node()}


def subset(corpus: str, shards: int, work: Path) -> tuple[str, int]:
    """A folder holding (links to) the first `shards` shards of corpus (0 = all of them)."""
    files = sorted(glob.glob(os.path.join(corpus, "*.json.gz")))
    if not files:
        sys.exit(f"no shards in {corpus}")
    if not shards or shards >= len(files):
        return corpus, len(files)
    d = work / f"corpus-{shards}"
    d.mkdir(parents=True, exist_ok=True)
    for f in files[:shards]:
        link = d / os.path.basename(f)
        if not link.exists():
            link.symlink_to(os.path.abspath(f))
    return str(d), shards


def med(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 3) if xs else None


# ---- one function per stage bench: returns a row for the table plus the raw figures --------

def bench_limits(a, corpus, shards, work) -> dict:
    out = work / "limits.json"
    sh([PY, BENCH / "limits.py", "--corpus", corpus, "--shards", "0", "--repeats", a.repeats, "--json", out],
       work / "limits.log")
    r = json.loads(out.read_text())
    peer = next(x for x in r["rows"] if x["way"].startswith("peer ingest"))
    return {"stage": "limit (gunzip+parse)", "ours": f"{r['limit_per_core_mb_s']:.0f} MB per CPU-s",
            "peer": f"{peer['raw_mb_per_cpu_s']:.0f} MB per CPU-s (pyarrow.json+Parquet)",
            "ratio": None, "data": f"{r['raw_mb']:.0f} MB raw JSON, {r['shards']} shards", "raw": r}


def bench_ingest(a, corpus, shards, work) -> dict:
    out = work / "ingest.json"
    sh([PY, BENCH / "ingest.py", "--corpus", corpus, "--repeats", a.repeats, "--json", out], work / "ingest.log")
    r = json.loads(out.read_text())
    return {"stage": "ingest", "ours": f"{r['ours_mb_s']} MB/s", "peer": f"{r['peer_mb_s']} MB/s ({r['peer']})",
            "ratio": r["ratio_median"], "ratio_runs": [round(p / o, 2) for o, p in zip(r["ours_s"], r["peer_s"])],
            "data": f"{r['data_mb']:.0f} MB raw JSON, {r['shards']} shards", "raw": r}


def bench_ingest_real(a, corpus, shards, work) -> dict:
    """Real-size shards (two of 1 GB raw JSON and one of 4 GB), each side in its own process tree."""
    out = work / "ingest_real.json"
    sh([PY, BENCH / "ingest.py", "--realistic", "--repeats", a.repeats, "--json", out], work / "ingest_real.log")
    r = json.loads(out.read_text())
    prof = work / "ingest_profile.json"
    sh([PY, BENCH / "ingest.py", "--profile", "--json", prof], work / "ingest_real.log")
    o, p = r["ours_run"], r["peer_run"]
    return {"stage": "ingest, real-size shards", "ours": f"{r['ours_mb_s']} MB/s", "peer": f"{r['peer_mb_s']} MB/s "
            f"({r['peer']})", "ratio": r["ratio_median"],
            "ratio_runs": [round(b / a_, 2) for a_, b in zip(o["seconds"], p["seconds"])],
            "cpu_ratio": round(o["mb_per_cpu_s"] / p["mb_per_cpu_s"], 2),
            "data": f"{r['data_mb']:,.0f} MB raw JSON ({r['gz_mb']:,.0f} MB gz), {len(r['shards'])} shards", "raw": r,
            "profile": json.loads(prof.read_text())}


def ingest_output(corpus: str, work: Path, given: str | None = None) -> str:
    """A Parquet ingest output of the bench corpus, input for the dedup and clean benches (not timed)."""
    if given:
        return given
    out = work / "ingest-run"
    if not (out / "_stages" / "ingest.json").exists():
        sh(["./spark-submit.sh", "--master", "local[2]", "jobs/ingest.py", "--set", f"input={corpus}",
            "--set", f"output={out}"], work / "ingest-run.log")
    return str(out / "ingest")


def bench_clean(a, corpus, shards, work) -> dict | None:
    script = BENCH / "clean.py"
    if not script.exists():
        log("bench/clean.py not there yet: clean skipped")
        return None
    out = work / "clean.json"
    cmd = [PY, script, "--input", ingest_output(corpus, work, a.ingest_output), "--repeats", a.repeats, "--json", out]
    if not a.quick:
        cmd.append("--passes")  # where the stage's wall time goes, pass by pass (minutes)
    if a.dedup_limit:
        cmd += ["--limit", a.dedup_limit]
    sh(cmd, work / "clean.log")
    r = json.loads(out.read_text())
    return {"stage": "clean (filters + exact dedup + decontamination)", "ours": f"{r['ours_mb_s']} MB/s",
            "peer": f"{r['peer_mb_s']} MB/s ({r['peer']})", "ratio": r["ratio_median"],
            "ratio_runs": [round(p / o, 2) for o, p in zip(r["ours_s"], r["peer_s"])],
            "cpu_ratio": r.get("cpu_ratio_peer_over_ours"),
            "data": f"{r['data_mb']} MB content, {r['files']:,} files; same files kept: {r.get('identical_kept')}",
            "raw": r}


def bench_dedup(a, corpus, shards, work) -> dict:
    src = ingest_output(corpus, work, a.ingest_output)
    runs = []
    for i in range(a.repeats):  # one ours/datasketch pair per call
        out = work / f"dedup-{i}.json"
        cmd = [PY, BENCH / "dedup.py", "--input", src, "--json", out]
        if a.dedup_limit:
            cmd += ["--limit", a.dedup_limit]
        sh(cmd, work / "dedup.log")
        runs.append(json.loads(out.read_text()))
    r0 = runs[0]
    ours = med([r["ours"]["mb_per_s"] for r in runs])
    peer = med([r["datasketch"]["mb_per_s"] for r in runs])
    ratios = [r["speedup_wall"] for r in runs]
    cpu_ratios = [r["cpu_ratio_datasketch_over_ours"] for r in runs]
    return {"stage": "dedup (near, MinHash LSH)", "ours": f"{ours} MB/s", "peer": f"{peer} MB/s (datasketch, 1 process)",
            "ratio": med(ratios), "ratio_runs": ratios, "cpu_ratio": med(cpu_ratios),
            "data": f"{r0['mb']} MB content, {r0['files']:,} files",
            "removed": {"ours": r0["ours"]["removed"], "datasketch": r0["datasketch"]["removed"]}, "raw": runs}


def bench_dedup_quality(a, corpus, shards, work) -> dict:
    """Precision and recall against exact Jaccard (bench/dedup_quality.py) on dedup's real input
    (the clean output of the bench corpus) and on the ingest output (exact copies left in)."""
    ingest = ingest_output(corpus, work, a.ingest_output)
    root = os.path.dirname(ingest.rstrip("/"))
    if not os.path.exists(os.path.join(root, "_stages", "clean.json")):
        sh(["./spark-submit.sh", "--master", "local[2]", "jobs/clean.py", "--set", f"output={root}"],
           work / "dedup_quality.log")
    raw = {}
    for name, folder in (("clean", os.path.join(root, "clean")), ("ingest", ingest)):
        out = work / f"dedup-quality-{name}.json"
        sh([PY, BENCH / "dedup_quality.py", "--input", folder, "--json", out], work / "dedup_quality.log")
        raw[name] = json.loads(out.read_text())
    v, c = raw["clean"]["verified"], raw["clean"]["clusters"]
    return {"stage": "dedup quality (vs exact Jaccard)", "ours": f"P {v['precision']} / R {v['recall']} (pairs), "
            f"P {c['precision']} / R {c['recall']} (clusters)",
            "peer": f"P {raw['clean']['datasketch']['precision']} / R {raw['clean']['datasketch']['recall']} (datasketch)",
            "ratio": None, "data": f"{raw['clean']['files']:,} files of the clean output incl. synthetic near-copies",
            "raw": raw}


TOKENIZER_ROW = re.compile(r"^\s*(\d+)\s+([\d,]+)\s+([\d.]+)\s+\|\s+([\d.]+)\s+(\d+)\s+(\d+)\s+\|\s+([\d.]+)\s+(\d+)\s+\|"
                           r"\s+([\d.]+)\s+([\d.]+)\s+(\w+)")


def bench_tokenizer(a, corpus, shards, work) -> dict:
    sizes = ",".join([str(a.tokenizer_mb)] * a.repeats)  # one ours/plain pair per size, interleaved
    stdout = sh([PY, BENCH / "tokenizer.py", "--sizes", sizes, "--vocab", a.vocab, "--work", "/tmp/bench_tokenizer"],
                work / "tokenizer.log")
    rows = []
    for line in stdout.splitlines():
        m = TOKENIZER_ROW.match(line)
        if m:
            g = m.groups()
            rows.append({"files": int(g[1].replace(",", "")), "mb": float(g[2]), "ours_s": float(g[3]),
                         "ours_driver_mib": int(g[4]), "ours_jvm_mib": int(g[5]), "peer_s": float(g[6]),
                         "peer_mib": int(g[7]), "same": g[10] == "yes"})
    if not rows:
        raise RuntimeError("no result rows in bench/tokenizer.py output")
    mb = rows[0]["mb"]
    ratios = [round(r["peer_s"] / r["ours_s"], 2) for r in rows]
    return {"stage": "train tokenizer (BPE)", "ours": f"{mb / med([r['ours_s'] for r in rows]):.2f} MB/s",
            "peer": f"{mb / med([r['peer_s'] for r in rows]):.2f} MB/s (bare tokenizers, text in a list)",
            "ratio": med(ratios), "ratio_runs": ratios,
            "data": f"{mb} MB sample, {rows[0]['files']:,} files, vocab {a.vocab}",
            "memory_mib": {"ours_driver": med([r["ours_driver_mib"] for r in rows]),
                           "ours_jvm": med([r["ours_jvm_mib"] for r in rows]),
                           "peer": med([r["peer_mib"] for r in rows])},
            "same_tokenizer": all(r["same"] for r in rows), "raw": rows}


TOKENIZE_OURS = re.compile(r"spark tokenize stage.*?: ([\d,]+) tokens in ([\d.]+)s.*?; ([\d.]+) CPU-s")
TOKENIZE_PEER = re.compile(r"datasets\.map.*?: ([\d,]+) tokens in ([\d.]+)s.*?; ([\d.]+) CPU-s")
TOKENIZE_ENCODER = re.compile(r"encoder alone.*?: ([\d,]+) tokens in ([\d.]+)s; ([\d.]+) CPU-s")
TOKENIZE_TIKTOKEN = re.compile(r"tiktoken encoder alone.*?: ([\d,]+) tokens in ([\d.]+)s; ([\d.]+) CPU-s")
TOKENIZE_AGREE = re.compile(r"encoders agree: (True|False) \((\d+) of ([\d,]+) files differ\)")


def bench_tokenize(a, corpus, shards, work) -> dict:
    tok = work / "tokenize-tokenizer.json"
    runs = []
    for i in range(a.repeats):  # one ours/datasets pair per call; the tokenizer is trained once
        cmd = [PY, BENCH / "tokenize_pack.py", "--shards", a.tokenize_shards, "--work", work / "tokenize"]
        if tok.exists():
            cmd += ["--tokenizer", tok]
        stdout = sh(cmd, work / "tokenize.log")
        if not tok.exists():
            shutil.copy(work / "tokenize" / "run" / "tokenizer" / "tokenizer.json", tok)
        o, p = TOKENIZE_OURS.search(stdout), TOKENIZE_PEER.search(stdout)
        if not (o and p):
            raise RuntimeError("no result lines in bench/tokenize_pack.py output")
        runs.append({"ours_tokens": int(o[1].replace(",", "")), "ours_s": float(o[2]), "ours_cpu_s": float(o[3]),
                     "peer_tokens": int(p[1].replace(",", "")), "peer_s": float(p[2]), "peer_cpu_s": float(p[3])})
        e = TOKENIZE_ENCODER.search(stdout)
        if e:
            runs[-1].update(encoder_s=float(e[2]), encoder_cpu_s=float(e[3]))
        t, g = TOKENIZE_TIKTOKEN.search(stdout), TOKENIZE_AGREE.search(stdout)
        if t:
            runs[-1].update(tiktoken_s=float(t[2]), tiktoken_cpu_s=float(t[3]))
        if g:
            runs[-1].update(encoders_agree=g[1] == "True", files_differing=int(g[2]))
    ratios = [round((r["ours_tokens"] / r["ours_s"]) / (r["peer_tokens"] / r["peer_s"]), 2) for r in runs]
    cpu_ratios = [round((r["ours_tokens"] / r["ours_cpu_s"]) / (r["peer_tokens"] / r["peer_cpu_s"]), 2) for r in runs]
    return {"stage": "tokenize + pack", "ours": f"{med([r['ours_tokens'] / r['ours_s'] for r in runs]) / 1e6:.3f}M tok/s",
            "peer": f"{med([r['peer_tokens'] / r['peer_s'] for r in runs]) / 1e6:.3f}M tok/s (datasets.map num_proc=2)",
            "ratio": med(ratios), "ratio_runs": ratios, "cpu_ratio": med(cpu_ratios),
            "data": f"{runs[0]['ours_tokens'] / 1e6:.1f}M tokens, {a.tokenize_shards} shards", "raw": runs}


# ---- the doc ------------------------------------------------------------------------------

def latest_scaling() -> dict | None:
    """The newest scaling result (file names carry the date; earlier ones stay in bench/results/)."""
    files = sorted(RESULTS.glob("scaling-*.json"))
    return json.loads(files[-1].read_text()) | {"file": str(files[-1].relative_to(ROOT))} if files else None


_NUMBER = re.compile(r"[0-9][0-9,]*(?:\.[0-9]+)?")


def _same_data(a: str | None, b: str | None) -> bool:
    """Two rows measured the same data: the same words, each number within 2% (a corpus rebuilt on
    another machine differs by a few files: "455 MB raw JSON" and "456 MB raw JSON" are one input)."""
    if a is None or b is None or _NUMBER.sub("#", a) != _NUMBER.sub("#", b):
        return a == b
    values = [[float(x.replace(",", "")) for x in _NUMBER.findall(s)] for s in (a, b)]
    return all(abs(x - y) <= 0.02 * max(abs(x), abs(y), 1) for x, y in zip(*values))


def combine(results: list[dict]) -> dict:
    """One result from several run_all result files (stages merged, later wins)."""
    out = dict(results[0], stages={}, errors={})
    for i, r in enumerate(results):
        for name, row in r["stages"].items():  # re-measured: the later row; at another size: both kept
            same = [k for k, v in out["stages"].items()
                    if k.split("@")[0] == name and _same_data(v.get("data"), row.get("data"))]
            for k in same:
                del out["stages"][k]
            out["stages"][name if name not in out["stages"] else f"{name}@{i}"] = row
        out["errors"] = {k: v for k, v in {**out["errors"], **r.get("errors", {})}.items() if k not in out["stages"]}
    if len(results) > 1:
        out["command"] = "; ".join(c for r in results for c in [*r.get("earlier_commands", []), r["command"]])
        out["load_average_start"] = [max(r["load_average_start"][0] for r in results)]
        out["load_average_end"] = [max(r.get("load_average_end", [0])[0] for r in results)]
    return out


def render(result: dict, scaling: dict | None) -> str:
    import importlib.util

    spec = importlib.util.spec_from_file_location("perf_doc", BENCH / "perf_doc.py")
    mod = importlib.util.module_from_spec(spec)  # bench/perf_doc.py: the prose and tables of PERFORMANCE.md
    spec.loader.exec_module(mod)
    return mod.render_doc(result, scaling)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT / "data" / "corpus"))
    ap.add_argument("--quick", action="store_true", help="a few shards and small samples")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default=",".join(STAGES))
    ap.add_argument("--shards", type=int, help="shards for limits/ingest/dedup (default: all; --quick 8)")
    ap.add_argument("--dedup-limit", type=int, help="files for dedup (default: all; --quick 1000)")
    ap.add_argument("--tokenizer-mb", type=int, help="MB sampled for the tokenizer (default 100; --quick 3)")
    ap.add_argument("--tokenize-shards", type=int, help="shards for tokenize (default 24; --quick 4)")
    ap.add_argument("--vocab", type=int, default=32768)
    ap.add_argument("--ingest-output", help="an existing ingest output of the bench corpus for clean/dedup")
    ap.add_argument("--scaling", action="store_true", help="also run bench/scaling.py (long)")
    ap.add_argument("--work", default="/tmp/bench_run_all")
    ap.add_argument("--merge", action="store_true",
                    help="keep the stages of today's result file that --only does not re-run")
    ap.add_argument("--tag", default="", help="suffix of the result file name (runs of some stages side by side)")
    ap.add_argument("--render", metavar="RESULT_JSON", nargs="+",
                    help="only regenerate docs/PERFORMANCE.md from these result files (stages merged, later wins)")
    a = ap.parse_args(argv)
    if a.render:
        merged = combine([json.loads(Path(f).read_text()) for f in a.render]) | {"rendered_from": a.render}
        DOC.write_text(render(merged, latest_scaling()))
        log(f"wrote {DOC}")
        return 0
    q = a.quick
    a.shards = a.shards if a.shards is not None else (8 if q else 0)
    a.dedup_limit = a.dedup_limit if a.dedup_limit is not None else (1000 if q else 0)
    a.tokenizer_mb = a.tokenizer_mb or (3 if q else 100)
    a.tokenize_shards = a.tokenize_shards or (4 if q else 24)
    work = Path(a.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    corpus, shards = subset(a.corpus, a.shards, work)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y-%m-%d")
    result = {"date": dt.datetime.now().isoformat(timespec="seconds"), "machine": machine(),
              "command": "bench/run_all.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "settings": {k: v for k, v in vars(a).items() if k not in ("render",)},
              "corpus": a.corpus, "bench_corpus": corpus, "shards": shards,
              "load_average_start": [round(x, 1) for x in os.getloadavg()], "stages": {}, "errors": {}}
    out_file = RESULTS / f"{stamp}{'-quick' if q else ''}{'-' + a.tag if a.tag else ''}.json"
    if a.merge and out_file.exists():  # keep today's figures of the stages not re-run now
        old = json.loads(out_file.read_text())
        result["stages"] = {k: v for k, v in old.get("stages", {}).items() if k not in a.only.split(",")}
        result["earlier_commands"] = old.get("earlier_commands", []) + [old["command"]]
        result["load_average_start"] = old.get("load_average_start", result["load_average_start"])
    fns = {"limits": bench_limits, "ingest": bench_ingest, "ingest_real": bench_ingest_real, "clean": bench_clean,
           "dedup": bench_dedup, "dedup_quality": bench_dedup_quality,
           "tokenizer": bench_tokenizer, "tokenize": bench_tokenize}
    for name in a.only.split(","):
        t = time.time()
        load = os.getloadavg()[0]
        try:
            row = fns[name](a, corpus, shards, work)
        except Exception as e:  # one broken bench must not lose the others' figures
            result["errors"][name] = str(e)
            log(f"{name} failed: {e}")
            row = None
        if row:
            row.update(seconds=round(time.time() - t, 1), run_at=time.strftime("%H:%M:%S"), load_average=[round(load, 1), round(os.getloadavg()[0], 1)])
            result["stages"][name] = row
            log(f"{name}: ours {row['ours']}, peer {row['peer']}, ratio {row['ratio']}")
        result["load_average_end"] = [round(x, 1) for x in os.getloadavg()]
        out_file.write_text(json.dumps(result, indent=2, default=str) + "\n")  # after each stage: partial results survive
    if a.scaling:
        sc = RESULTS / f"scaling-{stamp}.json"
        # a quarter of the default corpus as the base: 8x is twice the corpus (~1 GB raw JSON)
        sh([PY, BENCH / "scaling.py", "--corpus", a.corpus, "--base-shards", "4" if q else "46", "--json", sc],
           work / "scaling.log")
    DOC.write_text(render(result, latest_scaling()))
    log(f"wrote {out_file} and {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
