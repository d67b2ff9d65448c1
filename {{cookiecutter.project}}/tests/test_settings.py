"""Settings come from the environment; a bad one stops start-up with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import settings
from http_server import config

PROJECT_DIR = Path(__file__).resolve().parent.parent


def test_defaults_listen_on_loopback_on_the_chosen_port():
    options = settings.load({})
    assert options["host"] == "127.0.0.1"
    assert options["port"] == int("{{ cookiecutter.port }}")
    assert options["log_format"] == "{{ cookiecutter.log_format }}"


def test_the_environment_overrides_the_defaults():
    options = settings.load({"HOST": "0.0.0.0", "PORT": "9000", "WORKERS": "2"})
    assert (options["host"], options["port"], options["workers"]) == ("0.0.0.0", 9000, 2)


def test_workers_auto_is_one_per_cpu_the_process_may_use():
    # The container's default (docker-compose.yml): its CPU limit, not the host's count.
    workers = settings.load({"WORKERS": "auto"})["workers"]
    assert workers == config.usable_cpus()
    assert 1 <= workers <= len(os.sched_getaffinity(0))


def test_a_relative_media_root_is_inside_the_project():
    options = settings.load({"MEDIA_ROOT": "media"})
    assert Path(options["media_root"]) == PROJECT_DIR / "media"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("WORKERS", "zero"),
        ("WORKERS", "many"),
        ("LOG_FORMAT", "xml"),
    ],
)
def test_a_bad_value_raises_an_error_naming_the_setting(name, value):
    with pytest.raises(settings.ConfigError, match=name):
        settings.load({name: value})


@pytest.mark.parametrize(("name", "value"), [("PORT", "not-a-port"), ("WORKERS", "many")])
def test_main_refuses_a_bad_setting_with_one_line(name, value):
    environment = {**os.environ, name: value}
    result = subprocess.run(
        [sys.executable, "main.py"],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0], result.stderr
