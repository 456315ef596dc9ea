"""A real Spark standalone cluster on 127.0.0.1 (master + workers started with spark-class,
stopped by PID), and helpers to run jobs through spark-submit.sh and compare outputs."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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


def _wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class Cluster:
    def __init__(self, master: str, procs: list[subprocess.Popen], workdir: Path):
        self.master = master
        self.procs = procs
        self.workdir = workdir

    def executor_pids(self) -> list[int]:
        """PIDs of executor JVMs (children of the workers)."""
        out = subprocess.run(["pgrep", "-f", "org.apache.spark.executor.CoarseGrainedExecutorBackend"],
                             capture_output=True, text=True).stdout.split()
        return [int(p) for p in out]


@contextmanager
def standalone_cluster(tmp: Path, workers: int = 1, cores: int = 1, memory: str = "2g"):
    """Start a master and `workers` workers on 127.0.0.1; stop them all by PID afterwards."""
    env = cluster_env()
    klass = str(spark_home() / "bin" / "spark-class")
    port = free_port()
    logs = tmp / "cluster-logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> None:
        log = open(logs / f"{name}.log", "wb")
        procs.append(subprocess.Popen([klass, *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))

    try:
        start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
              "--webui-port", str(free_port()))
        _wait_for_port(port)
        for i in range(workers):
            start(f"worker{i}", "org.apache.spark.deploy.worker.Worker", f"spark://127.0.0.1:{port}",
                  "--host", "127.0.0.1", "--cores", str(cores), "--memory", memory,
                  "--webui-port", str(free_port()), "--work-dir", str(tmp / f"work{i}"))
        time.sleep(3)  # let workers register before the first application asks for executors
        yield Cluster(f"spark://127.0.0.1:{port}", procs, tmp)
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def spark_submit(job: str, args: list[str], master: str | None = None, timeout: int = 900,
                 **popen) -> subprocess.CompletedProcess:
    cmd = [str(ROOT / "spark-submit.sh")]
    if master:
        cmd += ["--master", master]
    # small JVMs: several engineers' tests share this machine
    for conf in ("spark.executor.memory=1g", "spark.driver.memory=1g", "spark.ui.showConsoleProgress=false"):
        cmd += ["--conf", conf]
    cmd += [str(ROOT / "jobs" / job), *args]
    return subprocess.run(cmd, env=cluster_env(), capture_output=True, text=True, timeout=timeout, **popen)


def row_digests(spark, path: str, exclude: tuple[str, ...] = ()) -> list[str]:
    """Sorted per-row SHA-256 of a Parquet folder: equal lists mean equal content, whatever the files."""
    from pyspark.sql import functions as F

    df = spark.read.parquet(path)
    cols = [c for c in sorted(df.columns) if c not in exclude]
    return sorted(r[0] for r in df.select(F.sha2(F.to_json(F.struct(*cols)), 256)).collect())
