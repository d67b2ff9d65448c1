"""Settings: one table of names, defaults and checks, for keyword arguments and the environment.

``settings_from_env()`` reads the upper-case names from the environment and
returns ``WebServer`` keyword arguments; ``check()`` validates one value. A bad
value raises ``ConfigError`` with a one-line message that names the setting.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

_INTEGER = re.compile(r"[0-9]{1,12}")
_NUMBER = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,6})?")


class ConfigError(ValueError):
    """A setting has a value the server cannot run with."""


def _integer(low: int, high: int) -> Callable:
    def parse(name: str, value) -> int:
        if isinstance(value, str):
            if _INTEGER.fullmatch(value.strip()) is None:
                raise ConfigError(f"{name} must be an integer from {low} to {high}, got {value!r}")
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"{name} must be an integer from {low} to {high}, got {value!r}")
        return value

    return parse


def _seconds(low: float) -> Callable:
    def parse(name: str, value) -> float:
        if isinstance(value, str):
            if _NUMBER.fullmatch(value.strip()) is None:
                raise ConfigError(f"{name} must be a number of seconds, got {value!r}")
            value = float(value.strip())
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= low:
            raise ConfigError(f"{name} must be a number of seconds >= {low}, got {value!r}")
        return float(value)

    return parse


def _choice(*choices: str) -> Callable:
    def parse(name: str, value) -> str:
        if not isinstance(value, str) or value.strip().lower() not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value.strip().lower()

    return parse


def _text(name: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name} must be a non-empty string, got {value!r}")
    return value.strip()


def _url_prefix(name: str, value) -> str:
    value = _text(name, value)
    if not (value.startswith("/") and value.endswith("/")):
        raise ConfigError(f"{name} must start and end with '/', got {value!r}")
    return value


def _flag(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


MIB = 1024 * 1024

# name: (default, parser). The environment variable is the name in upper case.
SETTINGS: dict[str, tuple[object, Callable]] = {
    "host": ("127.0.0.1", _text),
    "port": (8080, _integer(0, 65535)),
    "workers": (1, _integer(1, 256)),
    "threads": (16, _integer(1, 1024)),
    "log_level": ("info", _choice("debug", "info", "warning", "error", "critical")),
    "log_format": ("text", _choice("text", "json")),
    "access_log": (True, _flag),
    "media_root": (None, _text),
    "media_url": ("/media/", _url_prefix),
    "max_body_size": (10 * MIB, _integer(0, 2**40)),
    "max_connections": (1000, _integer(1, 1_000_000)),
    "keep_alive_timeout": (5.0, _seconds(0.0)),
    "header_timeout": (10.0, _seconds(0.001)),
    "graceful_timeout": (10.0, _seconds(0.0)),
    "drain_delay": (0.0, _seconds(0.0)),
    "reuse_port": (False, _flag),
    "max_request_line": (8192, _integer(64, MIB)),
    "max_header_size": (64 * 1024, _integer(256, 16 * MIB)),
    "max_header_count": (100, _integer(1, 10_000)),
}


def check(name: str, value):
    """The validated value of one setting (``name`` lower case)."""
    if name not in SETTINGS:
        raise ConfigError(f"unknown setting {name!r}")
    if value is None and SETTINGS[name][0] is None:
        return None
    return SETTINGS[name][1](name.upper(), value)


def defaults() -> dict:
    return {name: default for name, (default, _) in SETTINGS.items()}


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict:
    """``WebServer`` keyword arguments from the environment, defaults for what is unset."""
    environ = os.environ if environ is None else environ
    settings = defaults()
    for name in SETTINGS:
        raw = environ.get(name.upper())
        if raw is not None and raw != "":
            settings[name] = check(name, raw)
    return settings
