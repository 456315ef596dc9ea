"""The HumanEval sandbox (lm.sandbox) against programs that try to get out: each attempt must
fail, leave nothing behind, and the evaluator must go on. Real processes, no mocks.

The attack programs run *without* humaneval's GUARD (they use posix.*, _socket and ctypes-free
tricks the guard does not see anyway): what holds here is the sandbox, not the seatbelt."""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import time
import uuid

import pytest
from codecorpus.lm import humaneval as H
from codecorpus.lm import sandbox as S

NAMESPACED = ("full", "userns")


@pytest.fixture(scope="module")
def box():
    with S.Sandbox(workers=2) as b:
        yield b


@pytest.fixture()
def marker():
    return f"escape-{uuid.uuid4().hex}"


def processes_with(text: str) -> list[int]:
    """Pids whose command line holds `text` (the sandbox's processes are visible from here)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def sandbox_uid_processes() -> list[int]:
    return [pid for pid, _, uids, _ in S._proc_table()
            if any(S.UID_BASE <= u < S.UID_BASE + S.UID_SPAN for u in uids)]


def test_the_strongest_level_is_used_and_recorded(box):
    if os.geteuid() == 0 and shutil.which("unshare"):
        assert box.level == "full"  # what this (root) machine gives; a regression would show here
    desc = box.describe()
    assert desc["level"] == box.level and desc["means"] == S.MEANS[box.level]
    assert box.run("print('hello')\n", 5).ok


def test_writes_outside_the_work_folder_do_not_land(box, marker, tmp_path):
    if box.level not in NAMESPACED:
        pytest.skip(f"isolation {box.level}: /tmp is shared")
    keep = f"/var/tmp/{marker}-keep"
    with open(keep, "w") as f:
        f.write("x")
    targets = [f"/work/{marker}", f"/tmp/{marker}", f"/var/tmp/{marker}", f"/dev/shm/{marker}",
               os.path.join(os.getcwd(), marker), str(tmp_path / marker)]
    program = f"""import posix
for path in {targets!r}:
    for attempt in (lambda: open(path, "w").write("x"),
                    lambda: posix.open(path, posix.O_CREAT | posix.O_WRONLY, 0o666),
                    lambda: posix.system(f"echo x > {{path}}")):
        try:
            attempt()
        except OSError:
            pass
try:
    posix.unlink({keep!r})
except OSError:
    pass
open("mine.txt", "w").write("the work folder is writable")
assert open("mine.txt").read().startswith("the work")
"""
    try:
        out = box.run(program, 10)
        assert out.ok, out.stderr
        assert [t for t in targets if os.path.exists(t)] == []
        assert os.path.exists(keep)
    finally:
        os.unlink(keep)


@pytest.mark.parametrize("parent", ["hangs", "exits"])
def test_a_grandchild_dies_with_the_program(box, marker, parent):
    sleep_s = 2.0
    program = f"""import posix, time
if posix.fork() == 0:
    posix.setsid()
    if posix.fork() == 0:
        posix.execv("/bin/sh", ["sh", "-c", "sleep {sleep_s}; echo x > /tmp/{marker}; echo x > /work/{marker} #"])
    posix._exit(0)
time.sleep(0.3)
{"time.sleep(60)" if parent == "hangs" else "pass"}
"""
    out = box.run(program, 1.0)
    assert out.timed_out == (parent == "hangs")
    assert processes_with(marker) == []  # gone as soon as run() returns
    time.sleep(sleep_s + 0.5)
    assert not os.path.exists(f"/tmp/{marker}") and not os.path.exists(f"/work/{marker}")


def test_no_connection_reaches_a_listener_on_the_host(box):
    if box.level not in NAMESPACED:
        pytest.skip(f"isolation {box.level}: the network is shared")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        program = f"""import _socket
for family, addr in ((_socket.AF_INET, ("127.0.0.1", {port})), (_socket.AF_INET6, ("::1", {port}))):
    s = _socket.socket(family, _socket.SOCK_STREAM)
    try:
        s.connect(addr)
        raise SystemExit("connected")
    except OSError:
        pass
raise SystemExit(3)
"""
        out = box.run(program, 5)
        assert out.returncode == 3, out.stderr
        with pytest.raises(TimeoutError):
            listener.accept()


def test_killing_the_parent_and_everything_else_fails(box):
    if box.level == "none":
        pytest.skip("isolation none: kill(-1) would reach the evaluator's own processes")
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        program = """import os, signal
for attempt in (lambda: os.kill(os.getppid(), signal.SIGKILL), lambda: os.kill(-1, signal.SIGKILL),
                lambda: os.kill(1, signal.SIGKILL)):
    try:
        attempt()
    except OSError:
        pass
"""
        box.run(program, 5)
        assert bystander.poll() is None  # kill(-1) did not reach a process of the evaluator's uid
        assert box.run("print('the evaluator goes on')\n", 5).ok
    finally:
        bystander.kill()
        bystander.wait()


def test_memory_output_and_cpu_are_limited(box):
    out = box.run("x = bytearray(10 * 2**30)\n", 10)
    assert out.returncode == 1 and "MemoryError" in out.stderr
    # RLIMIT_FSIZE stops the flood (Python ignores SIGXFSZ, so the write fails with EFBIG)
    out = box.run("import sys\nwhile True:\n    sys.stderr.write('x' * 65536)\n", 10)
    assert out.returncode not in (0, None) and not out.timed_out and len(out.stderr) <= S.STDERR_TAIL
    t0 = time.monotonic()
    out = box.run("while True:\n    pass\n", 1.0)
    assert out.timed_out and time.monotonic() - t0 < 1.0 + S.GRACE_S


def test_a_fork_bomb_is_bounded_and_cleaned_up(box):
    if box.level == "none" and os.geteuid() == 0:
        pytest.skip("isolation none as root: RLIMIT_NPROC does not apply to root")
    count = """import posix, sys, time
n = 0
try:
    while True:
        if posix.fork() == 0:
            time.sleep(30)
            posix._exit(0)
        n += 1
except OSError:
    sys.stderr.write(str(n))
"""
    out = box.run(count, 10)
    assert out.ok and 0 < int(out.stderr) <= box.limits.processes
    bomb = "import posix, time\nwhile True:\n    try:\n        posix.fork()\n    except OSError:\n        time.sleep(0.01)\n"
    assert box.run(bomb, 1.5).timed_out
    assert sandbox_uid_processes() == []
    assert box.run("print('next')\n", 5).ok


ADD = {"task_id": "T/add", "prompt": "def add(a, b):\n", "test": "def check(f):\n    assert f(2, 3) == 5\n",
       "entry_point": "add"}
NEG = {"task_id": "T/neg", "prompt": "def neg(a):\n", "test": "def check(f):\n    assert f(2) == -2\n",
       "entry_point": "neg"}


def test_the_evaluator_goes_on_after_each_escape(box, marker):
    """Escapes as completions, through humaneval (GUARD on): each fails, the right answer passes."""
    escapes = [f"    import posix\n    posix.system('touch /work/{marker}')\n    return a + b\n",  # passes, no file
               "    import posix\n    posix.kill(posix.getppid(), 9)\n",
               "    import posix\n    while True:\n        try:\n            posix.fork()\n        except OSError:\n            pass\n",
               "    return bytearray(10 * 2**30)\n",
               "    import _socket\n    _socket.socket().connect(('127.0.0.1', 9))\n"]
    comps = {"T/add": escapes + ["    return a + b\n", "    return a - b\n"]}
    res = H.check_completions([ADD], comps, timeout=1.5, box=box)["T/add"]
    assert [r["passed"] for r in res] == [True, False, False, False, False, True, False]
    assert res[2]["result"] == "timed out" and "MemoryError" in res[3]["result"]
    assert not os.path.exists(f"/work/{marker}")


def _job(argv: list[str]) -> int:
    import eval_humaneval  # jobs/ is on sys.path (conftest)

    return eval_humaneval.main(argv)


def test_completions_job_scores_right_and_wrong(tmp_path, box):
    problems, comps = tmp_path / "problems.jsonl", tmp_path / "samples.jsonl"
    problems.write_text("".join(json.dumps(p) + "\n" for p in (ADD, NEG)))
    rows = [("T/add", "    return a + b\n"), ("T/add", "    return a * b\n"),
            ("T/neg", "    return -a\n"), ("T/neg", "    return 0 - a\n")]
    comps.write_text("".join(json.dumps({"task_id": t, "completion": c}) + "\n" for t, c in rows))
    out = tmp_path / "out"
    assert _job(["--problems", str(problems), "--completions", str(comps), "--out", str(out), "--workers", "2",
                 "--k", "1", "--k", "2", "--k", "10"]) == 0
    report = json.loads((out / "humaneval.json").read_text())
    assert report["pass@1"] == pytest.approx((0.5 + 1.0) / 2) and report["pass@2"] == pytest.approx(1.0)
    assert "pass@10" not in report and report["samples"] == 4
    assert report["per_problem"]["T/add"]["results"][0] == "passed"
    assert report["per_problem"]["T/add"]["results"][1].startswith("failed: AssertionError")
    assert report["isolation"]["level"] == box.level


def test_a_weaker_level_is_loud_and_can_be_refused(tmp_path, caplog):
    with pytest.raises(S.SandboxError, match="'full' is required"):
        S.Sandbox(level="none", require="full")
    with caplog.at_level(logging.WARNING, logger="codecorpus"), S.Sandbox(level="none") as weak:
        assert weak.describe()["level"] == "none"
    assert any("NOT full" in r.getMessage() for r in caplog.records)
    problems, comps = tmp_path / "p.jsonl", tmp_path / "c.jsonl"
    problems.write_text(json.dumps(ADD) + "\n")
    comps.write_text(json.dumps({"task_id": "T/add", "completion": "    return a + b\n"}) + "\n")
    base = ["--problems", str(problems), "--completions", str(comps), "--out", str(tmp_path / "o")]
    assert _job(base + ["--isolation", "none", "--require-isolation", "full"]) == 2
    assert _job(base + ["--isolation", "none"]) == 0
    assert json.loads((tmp_path / "o" / "humaneval.json").read_text())["isolation"]["level"] == "none"


def test_unknown_levels_and_tasks_are_user_errors(box):
    with pytest.raises(S.SandboxError, match="expected one of"):
        S.select("strong")
    with pytest.raises(H.UserError, match="unknown problems"):
        H.check_completions([ADD], {"T/missing": ["    pass\n"]}, box=box)


@pytest.mark.parametrize("level", ["uid", "none"])
def test_lower_levels_still_kill_everything_they_started(level, marker):
    """The fallbacks hold what they promise: no process outlives the program, limits apply."""
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None or S.probe(level, python) is not None:
        pytest.skip(f"isolation {level} unavailable here: {python and S.probe(level, python)}")
    with S.Sandbox(level=level, python=python) as weak:
        program = (f"import posix, time\nif posix.fork() == 0:\n    posix.setsid()\n"
                   f"    posix.execv('/bin/sh', ['sh', '-c', 'sleep 5 # {marker}'])\ntime.sleep(60)\n")
        assert weak.run(program, 1.0).timed_out
        assert processes_with(marker) == []
        assert weak.run("x = bytearray(10 * 2**30)\n", 5).returncode == 1
        assert weak.run("print('next')\n", 5).ok
