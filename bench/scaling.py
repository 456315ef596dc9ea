"""Scaling curve of the full CPU pipeline: the same job on 1x, 2x, 4x, 8x a base corpus, with
time and MB/s per stage and in total, the fixed cost (JVM start-up, per-stage scheduling)
separated from the per-byte cost by a least-squares fit time = a + b * MB, and the peak RSS
of the driver JVM (in local mode it also runs the executors' tasks), the Python driver and
the Python workers during each stage, sampled from /proc.

    .venv/bin/python bench/scaling.py [--corpus data/corpus] [--base-shards 4] [--factors 1,2,4,8]
        [--work /tmp/bench_scaling] [--json out.json]

The base corpus is the first --base-shards shards. Copy k > 0 of a shard renames repo_name and
path and suffixes every identifier in the content (keywords and builtins kept), so the copies
are new files to every stage: dedup's shingles differ, and the copies are not removed as
near-duplicates. Each factor runs `./spark-submit.sh jobs/pipeline.py` (spark-submit's default
master, local[*]) as a fresh job, so the total includes the JVM start-up.
"""
from __future__ import annotations

import argparse
import builtins
import glob
import json
import keyword
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
KEEP = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins)) | {"self", "cls"}


def rename_identifiers(text: str, k: int) -> str:
    suffix = f"_x{k}"
    return IDENT.sub(lambda m: m.group(0) if m.group(0) in KEEP else m.group(0) + suffix, text)


def make_copy(src: str, dest: str, k: int) -> int:
    """Write copy k of shard src to dest; returns the raw JSON bytes written."""
    import orjson
    from isal import igzip

    out, raw = [], 0
    with igzip.open(src, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            rec = orjson.loads(line)
            if k:
                rec["repo_name"] = f"{rec.get('repo_name')}-x{k}"
                rec["path"] = f"x{k}/{rec.get('path')}"
                if isinstance(rec.get("content"), str):
                    rec["content"] = rename_identifiers(rec["content"], k)
            b = orjson.dumps(rec) + b"\n"
            raw += len(b)
            out.append(b)
    tmp = dest + ".tmp"
    with igzip.open(tmp, "wb", compresslevel=1) as g:
        g.writelines(out)
    os.replace(tmp, dest)
    return raw


def build_corpora(corpus: str, base: int, factors: list[int], work: Path) -> dict[int, dict]:
    shards = sorted(f for f in glob.glob(os.path.join(corpus, "*.json.gz")))[:base]
    copies = work / "copies"
    sizes: dict[int, int] = {}
    for k in range(max(factors)):
        (copies / str(k)).mkdir(parents=True, exist_ok=True)
        total = 0
        for s in shards:
            dest = copies / str(k) / f"x{k}-{os.path.basename(s)}"
            size_file = Path(str(dest) + ".raw")
            if not dest.exists() or not size_file.exists():
                size_file.write_text(str(make_copy(s, str(dest), k)))
            total += int(size_file.read_text())
        sizes[k] = total
    out = {}
    for factor in factors:
        d = work / f"corpus-{factor}x"
        d.mkdir(parents=True, exist_ok=True)
        for k in range(factor):
            for f in (copies / str(k)).glob("*.json.gz"):
                link = d / f.name
                if not link.exists():
                    link.symlink_to(f)
        out[factor] = {"dir": str(d), "shards": base * factor, "raw_mb": sum(sizes[k] for k in range(factor)) / 1e6}
    return out


# ---- /proc sampling ------------------------------------------------------------------------

def _proc_table() -> dict[int, tuple[int, str, str, int, int]]:
    """pid -> (ppid, comm, cmdline, rss bytes, CPU ticks incl. reaped children) per live process."""
    page = os.sysconf("SC_PAGE_SIZE")
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            rss = int(Path(f"/proc/{entry}/statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        table[int(entry)] = (int(fields[1]), comm, cmd, rss, sum(int(v) for v in fields[11:15]))
    return table


def sample_tree(root: int) -> dict[str, float]:
    """RSS in MiB of the job's processes, by role: the JVM, the Python driver, Python workers."""
    table = _proc_table()
    tree, todo = set(), [root]
    while todo:
        p = todo.pop()
        tree.add(p)
        todo.extend(c for c, v in table.items() if v[0] == p and c not in tree)
    jvm = py_driver = workers = ticks = 0
    for p in tree:
        if p not in table:
            continue
        _, comm, cmd, rss, cpu = table[p]
        ticks += cpu
        if comm == "java":
            jvm += rss
        elif "python" in comm or "python" in cmd.split(" ", 1)[0]:
            if "pipeline.py" in cmd:
                py_driver += rss
            else:
                workers += rss  # pyspark.daemon and its forked workers
    mib = 1 << 20
    return {"jvm": jvm / mib, "py_driver": py_driver / mib, "py_workers": workers / mib,
            "cpu_s": ticks / os.sysconf("SC_CLK_TCK")}


def run_pipeline(input_dir: str, output: str, interval: float = 0.5) -> dict:
    subprocess.run(["rm", "-rf", output], check=True)
    cmd = ["./spark-submit.sh", "jobs/pipeline.py", "--set", f"input={input_dir}", "--set", f"output={output}"]
    samples: list[tuple[float, dict]] = []
    log = open(output + ".log", "w")
    started = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    stop = threading.Event()
    rusage0 = resource.getrusage(resource.RUSAGE_CHILDREN)

    def sampler():
        while not stop.is_set():
            samples.append((time.time(), sample_tree(proc.pid)))
            stop.wait(interval)

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    rc = proc.wait()
    stop.set()
    th.join()
    total = time.time() - started
    rusage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    total_cpu = (rusage1.ru_utime - rusage0.ru_utime) + (rusage1.ru_stime - rusage0.ru_stime)
    log.close()
    if rc != 0:
        sys.exit(f"pipeline failed (exit {rc}); log: {output}.log")
    stages = {}
    for marker in Path(output, "_stages").glob("*.json"):
        m = json.loads(marker.read_text())
        end = marker.stat().st_mtime
        stages[marker.stem] = {"seconds": m["seconds"], "start": end - m["seconds"], "end": end,
                               "rows_in": m["rows_in"], "rows_out": m["rows_out"]}
    first = min(s["start"] for s in stages.values())
    for s in stages.values():
        inside = [v for t, v in samples if s["start"] <= t <= s["end"]]
        # CPU seconds of the job's processes over the stage (live ones plus those they reaped)
        before = [v["cpu_s"] for t, v in samples if t <= s["start"]]
        after = [v["cpu_s"] for t, v in samples if t >= s["end"]]
        after = after or [samples[-1][1]["cpu_s"]]
        s["cpu_s"] = round(after[0] - before[-1], 1) if before else None
        s["peak_rss_mib"] = {role: round(max((v[role] for v in inside), default=0.0)) for role in
                             ("jvm", "py_driver", "py_workers")}
        s["start"], s["end"] = round(s["start"] - started, 2), round(s["end"] - started, 2)
    peak = {role: round(max((v[role] for _, v in samples), default=0.0)) for role in ("jvm", "py_driver", "py_workers")}
    startup_cpu = [v["cpu_s"] for t, v in samples if t <= first]
    return {"total_s": round(total, 2), "total_cpu_s": round(total_cpu, 1),
            "startup_s": round(first - started, 2),
            "startup_cpu_s": round(startup_cpu[-1], 1) if startup_cpu else None, "stages": stages,
            "peak_rss_mib": peak, "samples": len(samples)}


def fit(xs: list[float], ys: list[float]) -> dict:
    """Least squares y = a + b x."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    a = my - b * mx
    return {"a_s": round(a, 2), "b_s_per_mb": round(b, 4),
            "marginal_mb_s": round(1 / b, 2) if b > 0 else None}


def summarize(runs: dict[int, dict], args, argv) -> dict:
    done = sorted(runs)
    xs = [runs[f]["raw_mb"] for f in done]
    fits = {"total": fit(xs, [runs[f]["total_s"] for f in done]),
            "startup": fit(xs, [runs[f]["startup_s"] for f in done])}
    cpu_fits = {"total": fit(xs, [runs[f]["total_cpu_s"] for f in done])}
    for stage in runs[done[0]]["stages"]:
        if all(stage in runs[f]["stages"] for f in done):
            fits[stage] = fit(xs, [runs[f]["stages"][stage]["seconds"] for f in done])
            cpus = [runs[f]["stages"][stage]["cpu_s"] for f in done]
            if None not in cpus:
                cpu_fits[stage] = fit(xs, cpus)
    return {"bench": "scaling", "base_shards": args.base_shards, "factors": done,
            "factors_asked": [int(f) for f in args.factors.split(",")],
            "cpu_count": os.cpu_count(), "runs": {str(f): runs[f] for f in done}, "fits": fits, "cpu_fits": cpu_fits,
            "command": "bench/scaling.py " + " ".join(argv if argv is not None else sys.argv[1:])}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT / "data" / "corpus"))
    ap.add_argument("--base-shards", type=int, default=4)
    ap.add_argument("--factors", default="1,2,4,8")
    ap.add_argument("--work", default="/tmp/bench_scaling")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)
    factors = [int(f) for f in args.factors.split(",")]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t = time.time()
    corpora = build_corpora(args.corpus, args.base_shards, factors, work)
    print(f"replicas built in {time.time() - t:.0f}s: " +
          ", ".join(f"{f}x={c['raw_mb']:.1f} MB" for f, c in corpora.items()), flush=True)
    runs = {}
    result = {}
    for factor in factors:
        c = corpora[factor]
        load_before = os.getloadavg()[0]
        r = run_pipeline(c["dir"], str(work / f"out-{factor}x"))
        r.update(factor=factor, raw_mb=round(c["raw_mb"], 2), shards=c["shards"],
                 mb_s=round(c["raw_mb"] / r["total_s"], 3),
                 load_average=[round(load_before, 1), round(os.getloadavg()[0], 1)])
        runs[factor] = r
        print(f"{factor}x ({c['raw_mb']:.1f} MB): total {r['total_s']:.0f}s ({r['total_cpu_s']:.0f} CPU-s), "
              f"start-up {r['startup_s']:.0f}s, "
              + ", ".join(f"{n} {s['seconds']:.0f}s" for n, s in sorted(r["stages"].items(), key=lambda kv: kv[1]["start"])),
              flush=True)
        result = summarize(runs, args, argv)
        if args.json:  # after every factor: a cut-short run still leaves its curve so far
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"wall": result["fits"], "cpu": result["cpu_fits"]}, indent=1))
    return result


if __name__ == "__main__":
    main()
