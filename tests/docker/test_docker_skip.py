"""Without the base image (no registry, no local copy) every Docker test is skipped, for
one reason said once, instead of failing at the first build."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
from docker_helpers import ROOT, missing_images_problem

pytestmark = pytest.mark.docker  # the check asks the engine

MISSING = "python:0.0-missing-slim"


def test_a_base_image_that_cannot_be_pulled_is_a_problem():
    problem = missing_images_problem(["python:3.12-slim", MISSING])
    assert problem.startswith("base image not in the engine and not pullable: ")
    assert MISSING in problem and "python:3.12-slim" not in problem


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_docker_tests_skip_with_one_reason_when_the_base_image_is_missing(tmp_path):
    """A copy of the template whose only python_version has no image: its Docker tests."""
    copy = tmp_path / "template"
    ignore = shutil.ignore_patterns(".git", ".venv", "build", "__pycache__", ".*_cache", ".work")
    shutil.copytree(ROOT, copy, ignore=ignore)
    cookiecutter_json = copy / "cookiecutter.json"
    text = cookiecutter_json.read_text()
    text, replaced = re.subn(
        r'"python_version": \[[^\]]*\]', '"python_version": ["0.0-missing"]', text
    )
    assert replaced == 1
    cookiecutter_json.write_text(text)

    args = [
        sys.executable,
        "-m",
        "pytest",
        "tests/docker",
        "-m",
        "docker",
        "-rs",
        "-p",
        "no:cacheprovider",
    ]
    result = subprocess.run(args, cwd=copy, capture_output=True, text=True, timeout=240)
    out = result.stdout
    assert result.returncode == 0, out[-4000:]
    summary = out.strip().splitlines()[-1]
    assert re.fullmatch(r"=+ \d+ skipped, \d+ deselected in .+ =+", summary), out[-4000:]
    reasons = [line for line in out.splitlines() if line.startswith("Docker tests skipped:")]
    assert len(reasons) == 1, reasons
    assert reasons[0].startswith("Docker tests skipped: base image not in the engine and not")
    assert MISSING in reasons[0]
