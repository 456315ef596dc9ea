"""A sandbox for running model-written programs (HumanEval): the isolation is the operating
system's, not Python's, so it holds against code that calls `posix.*`, `_socket` or ctypes.

Each program gets a small *init* (this file run as a script, `python -I -S sandbox.py SPEC`,
stdlib only) that prepares the isolation, forks the program, waits for it with its own deadline
and reports one JSON line. Levels, strongest first (`LEVELS`; `probe` finds which work here):

- full:   the evaluator is root. New PID, network and mount namespaces (the `unshare` binary;
          the init is the namespace's PID 1, so when it exits everything left in it is killed by
          the kernel); every mount read-only and nosuid, /run masked, a minimal /dev, a private
          tmpfs for /tmp, /dev/shm and the work folder (all the program can write, and gone with
          it). The program runs as a dedicated uid (one per worker, never a real account, held by
          flock), with no groups, no capabilities and no_new_privs, so RLIMIT_NPROC (counted per
          uid) bounds exactly its processes.
- userns: the evaluator is not root but may create user namespaces: the same namespaces inside
          one; the program keeps the evaluator's uid (as "root" of the namespace with every
          capability dropped). RLIMIT_NPROC is counted inside the namespace.
- uid:    root without namespaces: a dedicated uid owning only its work folder, everything of
          that uid killed afterwards. It can still write world-writable folders (/tmp, /dev/shm)
          and use the network.
- none:   no namespaces, no other uid: a process group, rlimits, an empty capability bounding
          set and a subreaper init that kills every descendant. The program runs as the
          evaluator's user (as root it still owns the filesystem).

Every level: its own session and process group, killed as a group (SIGKILL) at the deadline;
RLIMIT_CPU/AS/FSIZE/NPROC/NOFILE/CORE; stdin and stdout /dev/null, stderr a memfd (bounded by
RLIMIT_FSIZE) of which the last 4 KB come back. `Sandbox` takes the strongest level that works
(or the one asked for), logs a warning for anything below full, records the level and why the
stronger ones are unavailable (`describe()`); `require=` makes a weaker level an error.
"""
from __future__ import annotations

# The init half of this file comes first and imports only what it needs: it runs once per program.
import ctypes
import json
import os
import re
import resource
import signal
import stat
import sys
import time

try:
    from codecorpus.core.errors import UserError as _Base
except ImportError:  # run as the init (python -I -S sandbox.py): only the standard library
    _Base = RuntimeError

LEVELS = ("full", "userns", "uid", "none")
MEANS = {
    "full": "PID+network+mount namespaces, read-only filesystem with private /tmp, dedicated uid",
    "userns": "PID+network+mount namespaces in a user namespace, read-only filesystem, capabilities "
              "dropped; the program keeps the evaluator's uid",
    "uid": "dedicated uid, no namespaces: network open, world-writable folders (/tmp, /dev/shm) writable",
    "none": "process group, rlimits, capabilities dropped: the program runs as the evaluator's uid "
            "(as root: it owns the filesystem)",
}
UID_BASE = int(os.environ.get("CODECORPUS_SANDBOX_UID_BASE", "1990000000"))  # far from real accounts
UID_SPAN = 4096
GRACE_S = 3.0  # the evaluator's own deadline comes this long after the init's
STDERR_TAIL = 4096
DEV_NODES = ("null", "zero", "full", "random", "urandom")
ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "TMPDIR": "/tmp"}


class SandboxError(_Base):
    """The sandbox could not be set up as asked (never a verdict on the program)."""


# ================================================================ the init (python -I -S sandbox.py SPEC)

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 24, 36, 38
_libc = None


def _c(name: str, *args) -> None:
    """A libc call (mount, prctl) that raises OSError on failure."""
    global _libc
    _libc = _libc or ctypes.CDLL(None, use_errno=True)
    conv = [a.encode() if isinstance(a, str) else (ctypes.c_ulong(a) if isinstance(a, int) else a) for a in args]
    if getattr(_libc, name)(*conv) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{name}{args[:2]}: {os.strerror(e)}")


def _mount(source, target: str, fstype, flags: int, data=None) -> None:
    _c("mount", source, target, fstype, flags, data)


def _mounts() -> list[tuple[str, set[str]]]:
    """(mount point, per-mount options) of /proc/self/mountinfo, octal escapes decoded."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            out.append((re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4]), set(fields[5].split(","))))
    return out


def _remount_readonly(path: str, opts: set[str]) -> None:
    """Bind-remount one mount read-only and nosuid, keeping nodev/noexec (a user namespace may not
    clear them: they are locked); atime flags are kept by the kernel when none are given."""
    flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID
    flags |= (MS_NODEV if "nodev" in opts else 0) | (MS_NOEXEC if "noexec" in opts else 0)
    _mount(None, path, None, flags)


def _all_readonly() -> None:
    for path, opts in _mounts():
        if "ro" not in opts or "nosuid" not in opts:
            try:
                _remount_readonly(path, opts)
            except OSError:
                pass  # hidden under another mount, or not remountable: _check_readonly decides


def _check_readonly(writable: set[str]) -> None:
    """Every mount still reachable at its mount point is read-only, except the private tmpfs's."""
    for path, _ in _mounts():
        try:
            st = os.statvfs(path)
        except OSError:
            continue  # no longer reachable
        if path not in writable and not st.f_flag & os.ST_RDONLY:
            raise SandboxError(f"{path} is still writable inside the sandbox")


def _mask(path: str, keep: list[tuple[str, int]], populate=None) -> None:
    """Cover `path` with an empty tmpfs holding only bind mounts of `keep` (path, O_PATH fd),
    then make it read-only."""
    _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    for target, fd in keep:
        os.makedirs(target, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND)
    if populate:
        populate()
    _mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _minimal_dev(nodes: dict[str, int]) -> None:
    """A /dev with null/zero/full/random/urandom (bind mounts of the real ones), fd links and
    a mount point for the private /dev/shm: no GPUs, disks or terminals."""
    _mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=1m")
    for name, fd in nodes.items():
        os.close(os.open(f"/dev/{name}", os.O_CREAT | os.O_WRONLY, 0o666))
        _mount(f"/proc/self/fd/{fd}", f"/dev/{name}", None, MS_BIND)
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{i}", f"/dev/{name}")
    os.symlink("/proc/self/fd", "/dev/fd")
    os.mkdir("/dev/shm")
    _mount(None, "/dev", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC)


def _build_filesystem(spec: dict) -> None:
    """Inside the new mount namespace: everything read-only; /dev minimal; folders others cannot
    enter that hold the interpreter masked but for it; /run masked; fresh tmpfs's for /tmp,
    /dev/shm and the work folder, which are all the program can write."""
    nodes = {n: os.open(f"/dev/{n}", os.O_PATH) for n in DEV_NODES if os.path.exists(f"/dev/{n}")}
    hidden = [(anc, keep, os.open(keep, os.O_PATH | os.O_DIRECTORY)) for anc, keep in spec["hidden"]]
    _all_readonly()
    _minimal_dev(nodes)
    for anc, keep, fd in hidden:
        _mask(anc, [(keep, fd)])
    if os.path.isdir("/run") and not any(k.startswith("/run/") for _, k, _ in hidden):
        _mask("/run", [])  # sockets of system daemons (dbus, docker, ...) live there
    uid = spec["uid"] or 0
    size, limits = spec["limits"]["tmpfs_bytes"], "nr_inodes=4096"
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={size},{limits}")
    _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={size},{limits}")
    os.makedirs(spec["workdir"], mode=0o755, exist_ok=True)
    _mount("tmpfs", spec["workdir"], "tmpfs", MS_NOSUID | MS_NODEV,
           f"mode=0700,uid={uid},gid={uid},size={size},{limits}")
    _check_readonly({"/tmp", "/dev/shm", spec["workdir"]})


def _prepare(spec: dict, program: bytes) -> None:
    if spec["namespaces"]:
        _build_filesystem(spec)
    elif spec["uid"] is not None:  # the uid level: a work folder owned by the uid, nothing else
        os.chown(spec["workdir"], spec["uid"], spec["uid"])
        os.chmod(spec["workdir"], 0o700)
    path = os.path.join(spec["workdir"], "program.py")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "wb") as f:
        f.write(program)


def _drop_privileges(spec: dict) -> None:
    """Empty the capability bounding set (so that no exec, not even of a root-owned program as
    uid 0, yields a capability), switch to the dedicated uid if any, set no_new_privs."""
    if os.geteuid() == 0:  # root here, or "root" of a user namespace: may drop bounding caps
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
        for cap in range(last + 1):
            _c("prctl", PR_CAPBSET_DROP, cap, 0, 0, 0)
    uid = spec["uid"]
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        _c("prctl", PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after setuid, which clears it
    _c("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)  # setuid binaries (su, mount) grant nothing


def _exec_program(spec: dict, stderr_fd: int, report_fd: int) -> None:
    """In the forked child: own process group, limits, lower privileges, exec. Any failure goes
    to `report_fd` (close-on-exec: empty when the exec worked)."""
    try:
        os.setpgid(0, 0)
        null = os.open("/dev/null", os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(stderr_fd, 2)
        os.chdir(spec["workdir"])
        lim = spec["limits"]
        for res, soft, hard in ((resource.RLIMIT_CPU, lim["cpu_s"], lim["cpu_s"] + 1),
                                (resource.RLIMIT_AS, lim["memory_bytes"], lim["memory_bytes"]),
                                (resource.RLIMIT_FSIZE, lim["file_bytes"], lim["file_bytes"]),
                                (resource.RLIMIT_NPROC, lim["processes"], lim["processes"]),
                                (resource.RLIMIT_NOFILE, lim["open_files"], lim["open_files"]),
                                (resource.RLIMIT_CORE, 0, 0)):
            resource.setrlimit(res, (soft, hard))
        _drop_privileges(spec)
        python = spec["python"]
        os.execve(python, [python, "-I", "-S", "program.py"], {**ENV, "HOME": spec["workdir"]})
    except BaseException as exc:  # noqa: BLE001 -- whatever it is, this child must not go on as the init
        os.write(report_fd, f"could not start the program: {type(exc).__name__}: {exc}".encode())
    finally:
        os._exit(127)


class _Deadline(Exception):
    pass


def _raise_deadline(signum, frame):
    raise _Deadline


def _wait(pid: int, timeout: float) -> dict:
    """Wait for the program (reaping orphans meanwhile, as PID 1 or a subreaper must); at the
    deadline SIGKILL its whole process group (and it, should it have joined another group)."""
    status = None
    signal.signal(signal.SIGALRM, _raise_deadline)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        while status is None:
            done, st = os.waitpid(-1, 0)
            if done == pid:
                status = st
    except _Deadline:
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if status is None:
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass  # reaped just before the deadline fired
        return {"status": "timeout"}
    if os.WIFSIGNALED(status):
        return {"status": "signal", "code": -os.WTERMSIG(status)}
    return {"status": "exit", "code": os.WEXITSTATUS(status)}


def _kill_descendants(pid: int) -> None:
    """Without a PID namespace: the program's group, then (the init being a subreaper) every
    orphan re-parented to it, until it has no live child. An orphan's parent turns zombie only
    after handing its children over, so an empty scan means no descendant is left."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    for _ in range(100000):
        kids = [p for p, ppid, _, _ in _proc_table() if ppid == os.getpid()]
        for kid in kids:
            try:
                os.kill(kid, signal.SIGKILL)
            except OSError:
                pass
        _reap()
        if not kids:
            return
        time.sleep(0.001)
    raise SandboxError("descendants of the program survive SIGKILL")


def _read_tail(fd: int) -> str:
    size = os.fstat(fd).st_size
    os.lseek(fd, max(0, size - STDERR_TAIL), os.SEEK_SET)
    return os.read(fd, STDERR_TAIL).decode("utf-8", "replace")


def init_main(argv: list[str]) -> int:
    """The init: prepare, fork the program, wait, clean up, one JSON line on stdout. With a PID
    namespace its exit kills whatever the program left behind."""
    try:
        spec = json.loads(argv[0])
        program = sys.stdin.buffer.read()
        if not spec["namespaces"]:
            _c("prctl", PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        _prepare(spec, program)
        stderr_fd = os.memfd_create("stderr")
        report_r, report_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            _exec_program(spec, stderr_fd, report_w)
        os.close(report_w)
        failed = os.read(report_r, 4096).decode("utf-8", "replace")
        result = _wait(pid, spec["timeout"])
        if failed:
            raise SandboxError(failed)
        if spec["uid"] is not None and not spec["namespaces"]:
            kill_uid(spec["uid"])
            _reap()
        elif not spec["namespaces"]:
            _kill_descendants(pid)
        result["stderr"] = _read_tail(stderr_fd)
    except BaseException as exc:  # noqa: BLE001 -- the evaluator always gets one line, and raises it
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


def _proc_table() -> list[tuple[int, int, set[int], int]]:
    """(pid, ppid, {real, effective, saved, fs uid}, threads) of every live process (zombies,
    already dead and waiting for their parent to reap them, are left out)."""
    rows = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                fields = dict(line.split(":", 1) for line in f
                              if line.startswith(("State:", "PPid:", "Uid:", "Threads:")))
            if fields["State"].split()[0] not in ("Z", "X"):
                rows.append((int(name), int(fields["PPid"]), {int(x) for x in fields["Uid"].split()},
                             int(fields.get("Threads", 1))))
        except (OSError, ValueError, KeyError):
            continue  # gone meanwhile
    return rows


def _reap() -> None:
    """Collect exited children (the init is their subreaper) without waiting."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def kill_uid(uid: int, deadline_s: float = 10.0) -> None:
    """SIGKILL every process running as `uid` until none is left. Each is signalled through a
    pidfd taken after its uid was read and checked again, so a reused pid is never hit."""
    end = time.monotonic() + deadline_s
    while True:
        pids = [pid for pid, _, uids, _ in _proc_table() if uid in uids]
        if not pids:
            return
        if time.monotonic() > end:
            raise SandboxError(f"processes of sandbox uid {uid} survive SIGKILL: {pids[:10]}")
        for pid in pids:
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                continue
            try:
                with open(f"/proc/{pid}/status") as f:
                    line = next(x for x in f if x.startswith("Uid:"))
                if uid in {int(x) for x in line.split()[1:]}:
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
            except (OSError, StopIteration):
                pass
            finally:
                os.close(fd)
        time.sleep(0.005)


if __name__ == "__main__":  # the init: stop before the evaluator's half (and its imports) runs
    sys.exit(init_main(sys.argv[1:]))

import logging
import shutil
import subprocess
import tempfile
import threading
from dataclasses import asdict, dataclass
from typing import Self

log = logging.getLogger("codecorpus")


# ================================================================ the evaluator's side

@dataclass(frozen=True)
class Limits:
    memory_bytes: int = 4 << 30   # RLIMIT_AS
    file_bytes: int = 16 << 20    # RLIMIT_FSIZE: any one file, stderr included
    processes: int = 64           # RLIMIT_NPROC: tasks of the sandbox's uid
    open_files: int = 256         # RLIMIT_NOFILE
    tmpfs_bytes: int = 32 << 20   # each private tmpfs (/tmp, /dev/shm, the work folder)


@dataclass(frozen=True)
class Outcome:
    returncode: int | None  # exit code, -N when killed by signal N, None when timed out
    timed_out: bool
    stderr: str             # the last STDERR_TAIL bytes
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def interpreter() -> str:
    """The real binary of this Python, not a venv's link: with -I -S nothing of the venv is
    wanted, and the init must know which folders to make reachable."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def hidden_roots(python: str) -> list[tuple[str, str]]:
    """(ancestor, keep) pairs: `keep` (the interpreter's prefix) lies under `ancestor`, a folder
    that others cannot enter (e.g. /root for a pyenv Python). A dedicated uid could not run the
    interpreter, so the init masks `ancestor` with a tmpfs holding only `keep`."""
    prefix = os.path.dirname(os.path.dirname(python))
    parts = prefix.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        path = "/" + "/".join(parts[:i])
        if not os.stat(path).st_mode & stat.S_IXOTH:
            return [(path, prefix)]
    return []


class _UidSlots:
    """Dedicated uids, one per worker, held by flock on a root-only lock folder, so that two
    evaluators on one machine (or two Sandboxes in one process) never share one: a shared uid
    would share the RLIMIT_NPROC count and could signal the other's programs."""

    def __init__(self, n: int):
        lock_dir = "/tmp/codecorpus-sandbox-uids"  # one fixed place for every evaluator, whatever TMPDIR says
        os.makedirs(lock_dir, mode=0o700, exist_ok=True)
        st = os.lstat(lock_dir)
        if st.st_uid != os.geteuid() or st.st_mode & 0o077 or not stat.S_ISDIR(st.st_mode):
            raise SandboxError(f"{lock_dir} must be a folder of uid {os.geteuid()} with mode 0700")
        import fcntl
        import pwd

        self.locks, self.free = [], []
        for uid in range(UID_BASE, UID_BASE + UID_SPAN):
            if len(self.free) == n:
                break
            try:
                pwd.getpwuid(uid)
                continue  # a real account: never borrow it
            except KeyError:
                pass
            fd = os.open(os.path.join(lock_dir, f"{uid}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            kill_uid(uid)  # leftovers of an evaluator that died: the uid is ours now
            self.locks.append(fd)
            self.free.append(uid)
        if len(self.free) < n:
            self.close()
            raise SandboxError(f"no {n} free sandbox uids in {UID_BASE}..{UID_BASE + UID_SPAN}")
        self.cond = threading.Condition()

    def take(self) -> int:
        with self.cond:
            self.cond.wait_for(lambda: self.free)
            return self.free.pop()

    def give(self, uid: int) -> None:
        with self.cond:
            self.free.append(uid)
            self.cond.notify()

    def close(self) -> None:
        for fd in self.locks:
            os.close(fd)
        self.locks = []


def _spec(level: str, python: str, workdir: str, uid: int | None, timeout: float, limits: Limits) -> dict:
    processes = limits.processes
    if level == "none" and os.geteuid() != 0:  # NPROC counts every task of the evaluator's uid
        processes += sum(n for _, _, uids, n in _proc_table() if os.getuid() in uids)
    return {"level": level, "python": python, "workdir": workdir, "uid": uid, "timeout": timeout,
            "namespaces": level in ("full", "userns"),
            "hidden": hidden_roots(python) if level == "full" else [],
            "limits": {**asdict(limits), "processes": processes, "cpu_s": int(timeout) + 1}}


def _command(level: str) -> list[str]:
    """What starts the init. `--kill-child`: the init dies with unshare, and with it the namespace."""
    if level not in ("full", "userns"):
        return []
    unshare = shutil.which("unshare") or "unshare"
    user = ["--user", "--map-root-user"] if level == "userns" else []
    return [unshare, *user, "--pid", "--net", "--mount", "--mount-proc", "--fork", "--kill-child", "--"]


def run_once(level: str, program: str, timeout: float, uid: int | None = None, python: str | None = None,
             limits: Limits = Limits()) -> Outcome:
    """One program at one level, no checks of the level (see Sandbox). The init reports within
    `timeout` (its own timer); past `timeout + GRACE_S` its whole group is SIGKILLed here."""
    python = python or interpreter()
    workdir = tempfile.mkdtemp(prefix="humaneval-")
    spec = _spec(level, python, workdir, uid, timeout, limits)
    cmd = _command(level) + [interpreter(), "-I", "-S", os.path.abspath(__file__), json.dumps(spec)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, env=ENV, cwd="/")
    try:
        try:
            out, err = proc.communicate(program.encode("utf-8"), timeout=timeout + GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return Outcome(None, True, "(the sandbox's init missed its deadline)", time.monotonic() - t0)
        finally:
            if uid is not None and proc.returncode != 0:
                kill_uid(uid)  # the init did not finish cleanly: its uid may have processes left
        return _outcome(out, err, proc.returncode, time.monotonic() - t0)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _outcome(out: bytes, err: bytes, rc: int, seconds: float) -> Outcome:
    try:
        report = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SandboxError(f"the sandbox init failed (exit {rc}): "
                           f"{err.decode('utf-8', 'replace').strip()[-500:] or 'no output'}") from None
    if report["status"] == "error":
        raise SandboxError(f"sandbox setup failed: {report['error']}")
    code = None if report["status"] == "timeout" else report["code"]
    return Outcome(code, report["status"] == "timeout", report["stderr"], seconds)


def _probe_program(level: str, uid: int | None) -> str:
    """Checks, inside, what the level promises; any failed check makes the level unavailable."""
    checks = ["import os, socket",
              "open('probe.txt', 'w').write('x')  # the work folder is writable"]
    if level in ("full", "userns"):
        checks += ["assert os.getppid() == 1, 'not in a PID namespace'",
                   "assert [n for _, n in socket.if_nameindex()] == ['lo'], 'network interfaces visible'",
                   ("try:\n    open('/codecorpus-sandbox-probe', 'w')\n    w = True\n"
                    "except OSError:\n    w = False\nassert not w, 'the root filesystem is writable'")]
    if uid is not None:
        checks.append(f"assert os.getuid() == {uid} and os.getgroups() == [], 'uid not dropped'")
    if level != "none":
        checks.append("assert '\\nCapEff:\\t0000000000000000' in open('/proc/self/status').read(), 'capabilities left'")
    return "\n".join(checks) + "\n"


_probed: dict[tuple[str, str], str | None] = {}
_probe_lock = threading.Lock()


def probe(level: str, python: str | None = None) -> str | None:
    """None when `level` works on this machine, else why not. Run once per process and level:
    a real program through the real path, checking from inside what the level promises."""
    python = python or interpreter()
    with _probe_lock:
        if (level, python) not in _probed:
            _probed[(level, python)] = _probe(level, python)
        return _probed[(level, python)]


def _probe(level: str, python: str) -> str | None:
    root = os.geteuid() == 0
    if level in ("full", "uid") and not root:
        return "needs the evaluator to run as root (to switch to a dedicated uid)"
    if level == "userns" and root:
        return "for evaluators that are not root (root gets 'full')"
    if level in ("full", "userns") and not shutil.which("unshare"):
        return "no unshare binary (util-linux)"
    if level == "uid" and hidden_roots(python):
        return f"the interpreter {python} is under {hidden_roots(python)[0][0]}, which other uids cannot enter"
    slots = _UidSlots(1) if level in ("full", "uid") else None
    try:
        uid = slots.take() if slots else None
        out = run_once(level, _probe_program(level, uid), 20.0, uid, python)
    except (SandboxError, OSError) as exc:
        return str(exc)
    finally:
        if slots:
            slots.close()
    return None if out.ok else f"probe program failed: {out.stderr.strip()[-300:] or out.returncode}"


def select(level: str = "auto", require: str | None = None, python: str | None = None) -> tuple[str, dict]:
    """(level to use, {stronger level: why it is unavailable}). `level` "auto" takes the
    strongest that works; `require` fails unless the level is at least that strong."""
    for name in (level, require):
        if name not in (*LEVELS, "auto", None):
            raise SandboxError(f"isolation level {name!r}: expected one of auto, {', '.join(LEVELS)}")
    unavailable: dict[str, str] = {}
    for name in (LEVELS if level == "auto" else (level,)):
        why = probe(name, python)
        if why is None:
            break
        unavailable[name] = why
    else:
        raise SandboxError("no sandbox isolation works here: " +
                           "; ".join(f"{k}: {v}" for k, v in unavailable.items()))
    if require and LEVELS.index(name) > LEVELS.index(require):
        why = "; ".join(f"{k}: {v}" for k, v in unavailable.items()) or f"{name!r} was asked for"
        raise SandboxError(f"isolation {require!r} is required, but this run gets {name!r} ({why})")
    return name, unavailable


class Sandbox:
    """Runs programs at one isolation level, `workers` at a time (thread-safe `run`)."""

    def __init__(self, level: str = "auto", require: str | None = None, workers: int = 1,
                 limits: Limits = Limits(), python: str | None = None):
        self.python, self.asked, self.required = python or interpreter(), level, require
        self.level, self.unavailable = select(level, require, self.python)
        self.limits, self.workers = limits, workers
        self.slots = _UidSlots(workers) if self.level in ("full", "uid") else None
        if self.level == "full":
            log.info("sandbox: isolation full (%s)", MEANS["full"])
        else:
            log.warning("sandbox: isolation %r, NOT full: %s. Unavailable: %s", self.level, MEANS[self.level],
                        "; ".join(f"{k}: {v}" for k, v in self.unavailable.items()) or "(level asked for)")

    def run(self, program: str, timeout: float) -> Outcome:
        uid = self.slots.take() if self.slots else None
        try:
            return run_once(self.level, program, timeout, uid, self.python, self.limits)
        finally:
            if uid is not None:
                self.slots.give(uid)

    def describe(self) -> dict:
        return {"level": self.level, "asked": self.asked, "required": self.required, "means": MEANS[self.level],
                "unavailable": self.unavailable,
                "limits": asdict(self.limits), "python": self.python}

    def close(self) -> None:
        if self.slots:
            self.slots.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


