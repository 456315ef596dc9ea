"""What the benchmarks share: the library on the path, a Parquet folder as one table, and CPU
seconds of a process tree (on a shared 2-core machine, CPU time moves far less than wall time)."""
from __future__ import annotations

import glob
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "lib") not in sys.path:
    sys.path.insert(0, str(ROOT / "lib"))


def load_table(folder: str, limit: int | None = None, columns: list[str] | None = None):
    """Every Parquet file under `folder`, sorted by id, optionally cut to the first `limit` rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(glob.glob(os.path.join(folder, "**", "*.parquet"), recursive=True))
    if not files:
        raise SystemExit(f"no Parquet files under {folder}")
    table = pa.concat_tables(pq.read_table(f, columns=columns) for f in files).sort_by("id")
    return table.slice(0, limit) if limit else table


def proc_stats() -> dict[int, list[str]]:
    """/proc/<pid>/stat of every live process, as its fields after the command name
    (fields[1] is the parent pid, fields[11:15] utime, stime, cutime, cstime in ticks)."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                out[int(entry)] = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
    return out


def descendants(root: int, stats: dict[int, list[str]]) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def tree_cpu_seconds(root: int | None = None) -> float:
    """CPU seconds used so far by a process (default: this one) and all its descendants: per
    live process utime+stime plus the times of the children it has reaped (Linux /proc)."""
    stats = proc_stats()
    tree = descendants(root or os.getpid(), stats)
    return sum(sum(int(v) for v in stats[p][11:15]) for p in tree if p in stats) / os.sysconf("SC_CLK_TCK")


def emit(result: dict, json_path: str | None) -> dict:
    """Print a benchmark's result and, when asked, write it as JSON."""
    import json

    print(json.dumps(result, indent=2))
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n")
    return result
