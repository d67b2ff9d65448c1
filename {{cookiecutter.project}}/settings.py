"""Settings: every one is read from the environment, which a .env file may fill in.

The names and their meaning are listed in .env.example and README.md. A bad
value raises ConfigError with one line that names the setting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

from http_server.config import ConfigError, settings_from_env

BASE_DIR = Path(__file__).resolve().parent

# Used when neither the environment nor .env sets a value. HOST stays on the
# loopback interface for `make run`; the Dockerfile sets HOST=0.0.0.0.
DEFAULTS = {
    "HOST": "127.0.0.1",
    "PORT": "{{ cookiecutter.port }}",
    "LOG_FORMAT": "{{ cookiecutter.log_format }}",
    "MEDIA_ROOT": "media",
    "MEDIA_URL": "/media/",
}

__all__ = ["BASE_DIR", "DEFAULTS", "ConfigError", "load"]


def load(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the WebServer keyword arguments for these settings.

    Without ``environ``, .env is read into the process environment first
    (variables that are already set win) and the environment is used. Tests
    pass their own mapping, so a developer's .env cannot change what they see.
    """
    if environ is None:
        load_dotenv(BASE_DIR / ".env")
        environ = os.environ
    options = settings_from_env({**DEFAULTS, **environ})
    # A relative MEDIA_ROOT means "in this project", wherever the server is started from.
    options["media_root"] = str(BASE_DIR / options["media_root"])
    return options
