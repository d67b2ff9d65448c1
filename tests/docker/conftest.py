"""Docker tests: a real engine, real images, real containers; nothing is mocked.

Tests marked ``docker`` need a reachable Docker engine with Compose v2 and the base images
(python:X-slim for each python_version, pulled once if the engine lacks them). Without
them every such test is skipped with one reason ("no Docker engine reachable: ..." or
"base image not in the engine and not pullable: ..."), checked once per run; CI provides
an engine and stand-in base images (.ci/docker-engine.sh). Every compose project gets a
unique name and is always taken down (``down -v --rmi local``) afterwards.

Containers run with host networking (a compose override written by ``ComposeProject``)
and listen on 127.0.0.1 only: the tests talk to them over 127.0.0.1 and nothing else.
The figures the lead asked for (stop time, image size) are printed at the end of the run.
"""

from __future__ import annotations

import pytest
from docker_helpers import FIGURES, SKIP_REASONS, docker_problem


def pytest_collection_modifyitems(config, items):
    problem = None
    for item in items:
        if item.get_closest_marker("docker") is None:
            continue
        problem = problem or docker_problem()
        if problem:
            SKIP_REASONS.add(problem)
            item.add_marker(pytest.mark.skip(reason=problem))


def pytest_terminal_summary(terminalreporter):
    if FIGURES or SKIP_REASONS:
        terminalreporter.section("Docker")
    for reason in sorted(SKIP_REASONS):
        terminalreporter.write_line(f"Docker tests skipped: {reason}")
    for name, value in FIGURES.items():
        terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture
def figures() -> dict[str, str]:
    """Record a figure: ``figures["name"] = "value"``; printed at the end of the run."""
    return FIGURES
