"""Settings: one table of names, defaults and checks, for keyword arguments and the environment.

``settings_from_env()`` reads the upper-case names from the environment and
returns ``WebServer`` keyword arguments; ``check()`` validates one value. A bad
value raises ``ConfigError`` with a one-line message that names the setting.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

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


# Where the kernel shows the cgroups: the limits of a container (its own cgroup, which
# a container sees at the root of the mount), or of a systemd service (found through
# /proc/self/cgroup).
CGROUP_ROOT = Path("/sys/fs/cgroup")
MEMBERSHIP = Path("/proc/self/cgroup")
MAX_WORKERS = 256


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _cpus_of_quota(quota: str, period: str) -> float | None:
    """``quota`` microseconds of CPU time every ``period``, in CPUs; None for no quota
    (cgroup v2 says "max", v1 says -1)."""
    quota, period = quota.strip(), period.strip()
    if not (quota.isascii() and quota.isdigit() and period.isascii() and period.isdigit()):
        return None
    return int(quota) / int(period) if int(period) else None


def _v2_limit(folder: Path) -> float | None:
    text = _read(folder / "cpu.max")  # "200000 100000" is 2 CPUs; "max 100000" none
    if text is None or len(text.split()) != 2:
        return None
    return _cpus_of_quota(*text.split())


def _v1_limit(folder: Path) -> float | None:
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    return None if quota is None or period is None else _cpus_of_quota(quota, period)


def _cgroup_and_ancestors(membership: str, v2: bool) -> list[str]:
    """The cgroup of this process for the cpu controller and its ancestors, deepest first,
    as paths relative to the mount ("" is the mount's root)."""
    for line in membership.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        controllers = fields[1]
        if (v2 and controllers == "") or (not v2 and "cpu" in controllers.split(",")):
            parts = [part for part in fields[2].split("/") if part]
            return ["/".join(parts[:depth]) for depth in range(len(parts), 0, -1)] + [""]
    return [""]


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, membership: str | None = None) -> float | None:
    """The CPUs the cgroup CPU quota of this process allows (1.5 for 150 ms every 100 ms),
    the tightest on the way from its cgroup up to ``root``; None when nothing limits it.

    ``membership`` is the text of /proc/self/cgroup (read when None). In a container that
    path may not exist under ``root``, which then is the container's own cgroup. cgroup v2
    keeps ``cpu.max`` in each folder; v1 keeps its two files under cpu/ (or cpu,cpuacct/).
    """
    if membership is None:
        membership = _read(MEMBERSHIP) or ""
    limits = [_v2_limit(root / path) for path in _cgroup_and_ancestors(membership, v2=True)]
    v1_paths = _cgroup_and_ancestors(membership, v2=False)
    for mount in (root / "cpu", root / "cpu,cpuacct"):
        limits += [_v1_limit(mount / path) for path in v1_paths]
    found = [limit for limit in limits if limit is not None]
    return min(found) if found else None


def cpus_this_process_may_run_on() -> int:
    """Its CPU affinity (taskset, a cpuset), where the system tells it; else every CPU."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def usable_cpus(
    cpus: int | None = None, root: Path = CGROUP_ROOT, membership: str | None = None
) -> int:
    """How many CPUs this process may keep busy: ``cpus`` it may run on (its affinity when
    None), capped by the cgroup CPU quota, at least 1.

    A fractional quota is rounded down: with 1.5 CPUs, a second busy worker would only get
    the process throttled for part of every period.
    """
    count = cpus_this_process_may_run_on() if cpus is None else cpus
    limit = cgroup_cpu_limit(root, membership)
    if limit is not None:
        count = min(count, math.floor(limit))
    return max(1, min(count, MAX_WORKERS))


def _workers(name: str, value) -> int:
    """A number of worker processes, or "auto": one per CPU this process may use."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return usable_cpus()
    try:
        return _integer(1, MAX_WORKERS)(name, value)
    except ConfigError:
        raise ConfigError(
            f"{name} must be auto or an integer from 1 to {MAX_WORKERS}, got {value!r}"
        ) from None


MIB = 1024 * 1024

# name: (default, parser). The environment variable is the name in upper case.
SETTINGS: dict[str, tuple[object, Callable]] = {
    "host": ("127.0.0.1", _text),
    "port": (8080, _integer(0, 65535)),
    "workers": (1, _workers),
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
    # Request bodies: past body_spool_size a body waits in a temporary file, not in
    # memory; an upload slower than min_upload_rate bytes/s on average (after the
    # header_timeout it may take to start) gets 408; 0 turns the rule off.
    "body_spool_size": (MIB, _integer(0, 2**40)),
    "min_upload_rate": (1024, _integer(0, 2**40)),
    # The same for a client reading an answer: at least this many bytes/s on average
    # once it has had SEND_TIMEOUT; 0 turns the rule off.
    "min_download_rate": (1024, _integer(0, 2**40)),
    "max_form_parts": (1000, _integer(1, 1_000_000)),
    # Seconds a thread may spend on one event before it counts as blocked (a view
    # waiting on a database), and another thread starts taking events (pool.py).
    "blocked_after": (0.002, _seconds(0.0001)),
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
