""".ci/run, the CI entry point: it runs `make lint` and `make test`, and fails if either fails.

The script runs from a copy of it, in a folder without .ci/docker-engine.sh (so no engine is
started), with a `make` on PATH that records its arguments and fails for the targets named in
FAIL_TARGETS.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from template_helpers import ROOT, clean_environment

RECORDING_MAKE = """#!/bin/sh
echo "$*" >> "$MAKE_LOG"
for target in $FAIL_TARGETS; do
    [ "$*" = "$target" ] && exit 2
done
exit 0
"""


def run_ci(tmp_path: Path, fail_targets: str = "") -> tuple[int, list[str]]:
    """Run a copy of .ci/run; its exit status and the `make` command lines it ran."""
    checkout = tmp_path / "checkout"
    (checkout / ".ci").mkdir(parents=True)
    shutil.copy2(ROOT / ".ci" / "run", checkout / ".ci" / "run")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "make").write_text(RECORDING_MAKE)
    (bin_dir / "make").chmod(0o755)
    log = tmp_path / "make.log"
    environment = clean_environment(
        PATH=f"{bin_dir}:/usr/bin:/bin", MAKE_LOG=str(log), FAIL_TARGETS=fail_targets
    )
    result = subprocess.run(
        [str(checkout / ".ci" / "run")], env=environment, capture_output=True, timeout=60
    )
    return result.returncode, log.read_text().splitlines() if log.exists() else []


def test_ci_runs_make_lint_and_make_test(tmp_path):
    assert run_ci(tmp_path) == (0, ["lint", "test"])


@pytest.mark.parametrize("failing", ["lint", "test", "lint test"])
def test_ci_fails_if_lint_or_test_fails_and_still_runs_both(tmp_path, failing):
    status, commands = run_ci(tmp_path, fail_targets=failing)
    assert status != 0
    assert commands == ["lint", "test"]
