"""A real Spark standalone cluster on 127.0.0.1 (master + workers started with spark-class,
stopped by PID), jobs run through spark-submit.sh, fault injection, and output comparison.

Every process started here gets its own session (start_new_session), and is stopped by
killing the processes of that session: executors (children of a worker) and PySpark's Python
daemons (which move to their own process group, but never leave the session) go with it, and
nothing another engineer started on this machine is touched.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
EXECUTOR_CLASS = "org.apache.spark.executor.CoarseGrainedExecutorBackend"
# Small JVMs: several engineers' tests share this two-core machine.
SMALL_JVMS = ("spark.executor.memory=1g", "spark.driver.memory=1g", "spark.ui.showConsoleProgress=false")
# Small settings for whole-pipeline runs on the `small_corpus` fixture.
SMALL = ("tokenizer.vocab_size=1000", "tokenizer.n_examples=300", "tokenizer.eval_files=50",
         "tokens.seq_length=256", "split.valid_fraction=0.2", "record_digests=true")


def pipeline_args(corpus, out, *extra: str) -> list[str]:
    args = ["--set", f"input={corpus}", "--set", f"output={out}"]
    for s in SMALL:
        args += ["--set", s]
    return [*args, *extra]


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster_env() -> dict:
    env = dict(os.environ)
    env.update(SPARK_LOCAL_IP="127.0.0.1", SPARK_HOME=str(spark_home()), PYSPARK_PYTHON=sys.executable,
               PYSPARK_DRIVER_PYTHON=sys.executable)
    return env


# ------------------------------------------------------------------------------ processes

def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: state, ppid, pgrp, session, ..."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().decode(errors="replace").split("\0")


def session_pids(sid: int) -> list[int]:
    """Live processes of session `sid` (zombies left out)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = _stat_fields(int(entry))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(entry))
    return pids


def stop_session(sid: int, grace: float = 15) -> None:
    """SIGTERM every process of the session, SIGKILL what is left after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        for pid in session_pids(sid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + wait
        while session_pids(sid) and time.time() < deadline:
            time.sleep(0.2)
        if not session_pids(sid):
            return


def _wait_for_port(port: int, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


# -------------------------------------------------------------------------------- cluster

class Cluster:
    def __init__(self, master: str, master_ui: int, procs: list[subprocess.Popen], workdir: Path):
        self.master = master
        self.master_ui = master_ui
        self.procs = procs
        self.workdir = workdir

    def executors(self, app_id: str | None = None) -> dict[str, int]:
        """Executor id -> PID of the executor JVMs this cluster's workers launched (for `app_id`)."""
        sessions = {p.pid for p in self.procs}
        found = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if int(_stat_fields(int(entry))[3]) not in sessions:
                    continue
                args = _cmdline(int(entry))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if EXECUTOR_CLASS in args and (app_id is None or app_id in args):
                found[args[args.index("--executor-id") + 1]] = int(entry)
        return found

    def alive_workers(self) -> int:
        try:
            state = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{self.master_ui}/json/", timeout=10).read())
        except (OSError, ValueError):  # the master's UI is still starting
            return 0
        return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")


@contextmanager
def standalone_cluster(tmp: Path, workers: int = 1, cores: int = 1, memory: str = "2g"):
    """Start a master and `workers` workers on 127.0.0.1; stop them all (with their executors
    and Python workers) by PID afterwards, also when the body fails."""
    env = {**cluster_env(), "SPARK_DAEMON_MEMORY": "512m"}  # master and worker JVMs
    klass = str(spark_home() / "bin" / "spark-class")
    port, ui = free_port(), free_port()
    logs = tmp / "cluster-logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> None:
        with open(logs / f"{name}.log", "wb") as log:
            procs.append(subprocess.Popen([klass, *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))

    cluster = Cluster(f"spark://127.0.0.1:{port}", ui, procs, tmp)
    try:
        start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
              "--webui-port", str(ui))
        _wait_for_port(port)
        _wait_for_port(ui)
        for i in range(workers):
            start(f"worker{i}", "org.apache.spark.deploy.worker.Worker", cluster.master,
                  "--host", "127.0.0.1", "--cores", str(cores), "--memory", memory,
                  "--webui-port", str(free_port()), "--work-dir", str(tmp / f"work{i}"))
        # an application submitted before the workers registered would wait for executors
        deadline = time.time() + 120
        while cluster.alive_workers() < workers:
            if time.time() > deadline:
                raise TimeoutError(f"{workers} workers did not register; see {logs}")
            time.sleep(0.5)
        yield cluster
    finally:
        # Workers (and their executors) first, the master last. The work dirs stay for the
        # logs; they go with pytest's old temporary folders (unpacking an --archives copy takes
        # seconds, deleting its 25k files a minute on a busy disk).
        for p in reversed(procs):
            stop_session(p.pid)
            p.wait(timeout=10)


# ----------------------------------------------------------------------------------- jobs

class Job:
    """A spark-submit.sh run in its own session; stdout and stderr go to `log`."""

    def __init__(self, popen: subprocess.Popen, log: Path, ui_port: int | None):
        self.popen = popen
        self.log = log
        self.ui_port = ui_port

    def running(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        finally:
            stop_session(self.popen.pid, grace=5)  # anything the driver left behind

    def kill(self) -> None:
        """Crash the driver: SIGKILL the JVM and its Python at once, as a lost machine would."""
        for pid in session_pids(self.popen.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.popen.wait(timeout=30)
        stop_session(self.popen.pid, grace=5)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def api(self, path: str):
        """The driver's REST API (`/api/v1/...`); needs ui_port."""
        url = f"http://127.0.0.1:{self.ui_port}/api/v1/{path.lstrip('/')}"
        return json.loads(urllib.request.urlopen(url, timeout=10).read())


def start_job(job: str, args: list[str], log: Path, master: str | None = None, conf: tuple[str, ...] = (),
              pack_env: bool = False, ui: bool = False) -> Job:
    cmd = [str(ROOT / "spark-submit.sh")]
    if master:
        cmd += ["--master", master]
    if pack_env:
        cmd += ["--pack-env"]
    ui_port = free_port() if ui else None
    ui_conf = (f"spark.ui.port={ui_port}",) if ui else ("spark.ui.enabled=false",)
    for c in (*SMALL_JVMS, *ui_conf, *conf):
        cmd += ["--conf", c]
    cmd += [str(ROOT / "jobs" / job), *args]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as f:
        popen = subprocess.Popen(cmd, env=cluster_env(), stdout=f, stderr=subprocess.STDOUT,
                                 start_new_session=True, cwd=ROOT)
    return Job(popen, log, ui_port)


def spark_submit(job: str, args: list[str], master: str | None = None, timeout: int = 900,
                 **popen) -> subprocess.CompletedProcess:
    """Run a job to the end; stdout/stderr come back as text (the driver is stopped on timeout)."""
    cmd = [str(ROOT / "spark-submit.sh")]
    if master:
        cmd += ["--master", master]
    for conf in SMALL_JVMS:
        cmd += ["--conf", conf]
    cmd += [str(ROOT / "jobs" / job), *args]
    proc = subprocess.Popen(cmd, env=cluster_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **popen)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        stop_session(proc.pid, grace=5)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def wait_until(condition: Callable[[], bool], job: Job, timeout: float, what: str, every: float = 0.05) -> None:
    """Poll `condition` while the job runs; fail clearly if the job ends or time runs out first."""
    deadline = time.time() + timeout
    while not condition():
        if not job.running():
            raise AssertionError(f"job ended (rc={job.popen.returncode}) before {what}:\n{job.output()[-3000:]}")
        if time.time() > deadline:
            raise TimeoutError(f"no {what} after {timeout}s")
        time.sleep(every)


def kill_busy_executor(cluster: Cluster, job: Job, ready: Callable[[], bool], after_stages: int = 0,
                       timeout: float = 600) -> dict:
    """Once `ready()` holds and `after_stages` more Spark stages have completed, SIGKILL an executor
    JVM that is running a task at that moment (seen through the driver's REST API); returns what
    was killed, with the Spark stages then running."""
    wait_until(ready, job, timeout, "the moment to strike")
    deadline = time.time() + timeout
    done_at_ready = None
    while True:
        if not job.running():
            raise AssertionError(f"job ended before an executor was busy:\n{job.output()[-3000:]}")
        if time.time() > deadline:
            raise TimeoutError("no busy executor to kill")
        try:
            app = job.api("applications")[0]["id"]
            done = len(job.api(f"applications/{app}/stages?status=complete"))
            busy = [e for e in job.api(f"applications/{app}/executors")
                    if e["id"] != "driver" and e["isActive"] and e["activeTasks"] > 0]
        except (OSError, ValueError, IndexError, KeyError):
            time.sleep(0.05)  # the UI is not up yet
            continue
        done_at_ready = done if done_at_ready is None else done_at_ready
        pids = cluster.executors(app) if busy and done >= done_at_ready + after_stages else {}
        for e in busy:
            if e["id"] in pids:
                os.kill(pids[e["id"]], signal.SIGKILL)
                try:
                    stages = [(st["stageId"], st["numActiveTasks"])
                              for st in job.api(f"applications/{app}/stages?status=active")]
                except (OSError, ValueError):
                    stages = []
                return {"executor": e["id"], "pid": pids[e["id"]], "active_tasks": e["activeTasks"],
                        "active_stages": stages}
        time.sleep(0.05)


# ----------------------------------------------------------------------------- comparison

def row_digests(spark, path: str, exclude: tuple[str, ...] = ()) -> list[str]:
    """Sorted per-row SHA-256 of a Parquet folder: equal lists mean equal content, whatever the files."""
    from pyspark.sql import functions as F

    df = spark.read.parquet(path)
    cols = [c for c in sorted(df.columns) if c not in exclude]
    return sorted(r[0] for r in df.select(F.sha2(F.to_json(F.struct(*cols)), 256)).collect())


def parquet_folders(root: Path) -> list[str]:
    """Folders under a run root holding Parquet files (the stages' data), relative, sorted;
    the stage bookkeeping (_tmp, _stages) left out."""
    found = set()
    for f in root.rglob("*.parquet"):
        rel = f.parent.relative_to(root)
        if not rel.parts or rel.parts[0].startswith(("_", ".")) or f.name.startswith("."):
            continue
        found.add(str(rel))
    return sorted(found)


def stray_temp_files(root: Path) -> list[str]:
    """Half-written temporary files (`.name.<pid>.tmp`, `.name.tmp-<pid>`) in a run root's
    published folders: a killed writer's leftovers that a stage published with its output."""
    pattern = re.compile(r"^\..+\.tmp(-\d+)?$")
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*")
                  if pattern.match(p.name) and p.relative_to(root).parts[0] != "_tmp")


# Timings and absolute paths differ between runs by nature; everything else must not.
VOLATILE_KEYS = re.compile(r"seconds$|_per_s$|per_second|rss_mb$|^input$|^output$|_path$|_dir$")


def _stable(value):
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in sorted(value.items()) if not VOLATILE_KEYS.search(k)}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def run_fingerprint(spark, root: Path) -> dict:
    """What two runs must agree on: per-row hashes of every Parquet folder, each stage's
    counts (timings left out), and the trained tokenizer."""
    fp: dict = {f"parquet:{d}": row_digests(spark, str(root / d)) for d in parquet_folders(root)}
    for marker in sorted((root / "_stages").glob("*.json")):
        fp[f"counts:{marker.stem}"] = _stable(json.loads(marker.read_text()))
    tokenizer = root / "tokenizer" / "tokenizer.json"
    if tokenizer.exists():
        fp["tokenizer.json"] = json.loads(tokenizer.read_text())
    return fp


def fingerprint_diff(a: dict, b: dict) -> list[str]:
    """Names of the parts where two fingerprints differ (empty: the runs agree)."""
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
