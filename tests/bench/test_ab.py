"""bench/ab.py: the working tree's server against another revision's, in alternating rounds.

The comparison's figures are checked for their shape (both builds served, CPU time and
switches counted), never for a value: which build is faster is what the tool measures.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"

import ab  # noqa: E402
import idle  # noqa: E402
from workloads import VENV_BIN  # noqa: E402

HAS_HISTORY = (ROOT / ".git").exists()


@pytest.mark.skipif(not HAS_HISTORY, reason="not a git checkout: no revision to export")
def test_a_revision_is_exported_whole_with_the_template_it_imports(tmp_path):
    apps = ab.export_revision("HEAD", tmp_path)
    assert apps == tmp_path / "bench" / "apps"
    for path in ("bench/apps/ours.py", "{{cookiecutter.project}}/http_server/pool.py"):
        committed = subprocess.run(["git", "-C", str(ROOT), "show", f"HEAD:{path}"],
                                   capture_output=True, check=True).stdout
        assert (tmp_path / path).read_bytes() == committed


@pytest.mark.skipif(not HAS_HISTORY, reason="not a git checkout: no revision to export")
def test_an_unknown_revision_gets_one_clear_line(tmp_path):
    with pytest.raises(SystemExit, match=r"^error: cannot read revision 'no-such-revision': "):
        ab.export_revision("no-such-revision", tmp_path)
    assert list(tmp_path.iterdir()) == []


# A process whose two threads have each been switched out at least once: the second sleeps
# (a sleep always gives up the CPU), then says so and waits; the first waits for it to end.
TWO_THREADS = """
import sys, threading, time
def second():
    time.sleep(0.01)
    print("slept", flush=True)
    sys.stdin.read()
thread = threading.Thread(target=second)
thread.start()
thread.join()
"""


def test_context_switches_are_counted_over_every_thread():
    child = subprocess.Popen([sys.executable, "-c", TWO_THREADS], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "slept\n"
        assert len(os.listdir(f"/proc/{child.pid}/task")) == 2
        # The second thread slept; the first waited for it (or, still on its way to join,
        # was preempted): one switch each at least.
        assert idle.context_switches(child.pid) >= 2
    finally:
        child.stdin.close()
        child.wait(timeout=30)


def test_bad_rounds_get_one_clear_line():
    done = subprocess.run([sys.executable, str(BENCH / "ab.py"), "HEAD", "--rounds", "0"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "ab.py: error: --rounds must be 1 or more"


@pytest.mark.skipif(not HAS_HISTORY, reason="not a git checkout: no revision to export")
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make bench does)")
@pytest.mark.skipif(not (VENV_BIN / "python").exists(),
                    reason="bench/.venv does not exist (bench/install.sh creates it)")
def test_one_round_against_head_reports_both_builds():
    done = subprocess.run([str(VENV_BIN / "python"), str(BENCH / "ab.py"), "HEAD",
                           "--rounds", "1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    rows = {line.split("  ")[0]: line.split() for line in lines[2:4]}
    assert set(rows) == {"ours at HEAD", "ours (working tree)"}
    for fields in rows.values():
        requests, cpu_per_request = int(fields[-4].replace(",", "")), float(fields[-3])
        assert requests > 0 and cpu_per_request > 0 and float(fields[-1]) > 0  # p99 ms
    assert lines[4].startswith("ours (working tree) / ours at HEAD: CPU per request x")
