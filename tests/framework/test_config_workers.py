"""WORKERS=auto: one worker per CPU the process may use, its affinity capped by its cgroup.

The cgroup files are real files in a temporary folder laid out as the kernel lays them
out, so every case runs the same on any machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from http_server import WebServer, config


def write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


# cgroup v2 as a container sees it (its own cgroup at the root: "0::/") and v1 likewise.
V2_CONTAINER = "0::/\n"
V1_CONTAINER = "12:memory:/\n4:cpu,cpuacct:/\n1:name=systemd:/\n0::/\n"


@pytest.mark.parametrize(
    ("cpu_max", "cpus", "expected"),
    [
        ("max 100000\n", 8, 8),  # no quota: every CPU it may run on
        ("200000 100000\n", 8, 2),
        ("150000 100000\n", 8, 1),  # 1.5 CPUs: a second worker would only be throttled
        ("50000 100000\n", 8, 1),  # half a CPU still runs one worker
        ("400000 100000\n", 2, 2),  # a quota above the affinity does not add CPUs
    ],
)
def test_cgroup_v2_cpu_max_caps_the_cpus_the_process_may_run_on(tmp_path, cpu_max, cpus, expected):
    write(tmp_path, "cpu.max", cpu_max)
    assert config.usable_cpus(cpus, tmp_path, V2_CONTAINER) == expected


@pytest.mark.parametrize(
    ("quota", "period", "expected"),
    [("-1", "100000", 8), ("300000", "100000", 3), ("100000", "100000", 1)],
)
def test_cgroup_v1_cfs_quota_over_period_caps_them(tmp_path, quota, period, expected):
    folder = tmp_path / "cpu,cpuacct"
    write(folder, "cpu.cfs_quota_us", f"{quota}\n")
    write(folder, "cpu.cfs_period_us", f"{period}\n")
    assert config.usable_cpus(8, tmp_path, V1_CONTAINER) == expected


def test_without_cgroup_files_every_cpu_it_may_run_on_counts(tmp_path):
    assert config.cgroup_cpu_limit(tmp_path, V2_CONTAINER) is None
    assert config.usable_cpus(6, tmp_path, V2_CONTAINER) == 6
    assert config.usable_cpus(6, tmp_path, "") == 6


def test_the_tightest_quota_from_the_process_cgroup_up_to_the_root_wins(tmp_path):
    # A systemd service on a host: /proc/self/cgroup names its cgroup under the mount.
    write(tmp_path, "cpu.max", "max 100000\n")
    write(tmp_path / "system.slice", "cpu.max", "300000 100000\n")
    write(tmp_path / "system.slice" / "app.service", "cpu.max", "max 100000\n")
    membership = "0::/system.slice/app.service\n"
    assert config.cgroup_cpu_limit(tmp_path, membership) == 3.0
    assert config.usable_cpus(16, tmp_path, membership) == 3


def test_a_cgroup_path_missing_under_the_mount_falls_back_to_its_root(tmp_path):
    # A container without its own cgroup namespace: /proc/self/cgroup shows the host's
    # path, but the mount's root is the container's cgroup.
    write(tmp_path / "cpu", "cpu.cfs_quota_us", "200000\n")
    write(tmp_path / "cpu", "cpu.cfs_period_us", "100000\n")
    membership = "3:cpu:/docker/0123abcd\n0::/\n"
    assert config.usable_cpus(8, tmp_path, membership) == 2


@pytest.mark.parametrize("cpu_max", ["", "garbage\n", "200000 0\n", "١٠ 100000\n"])
def test_an_unreadable_quota_is_no_limit_rather_than_an_error(tmp_path, cpu_max):
    write(tmp_path, "cpu.max", cpu_max)
    assert config.usable_cpus(4, tmp_path, V2_CONTAINER) == 4


def test_never_fewer_than_one_nor_more_than_the_workers_limit(tmp_path):
    assert config.usable_cpus(0, tmp_path, "") == 1
    assert config.usable_cpus(1000, tmp_path, "") == config.MAX_WORKERS


def test_this_machine_gives_at_least_one_and_no_more_than_its_affinity():
    count = config.usable_cpus()
    assert 1 <= count <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize("value", ["auto", "AUTO", " auto "])
def test_workers_auto_is_the_usable_cpu_count(value):
    assert config.settings_from_env({"WORKERS": value})["workers"] == config.usable_cpus()


def test_the_webserver_keyword_takes_auto_too():
    assert WebServer(workers="auto").workers == config.usable_cpus()


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("4", 4), (" 8 ", 8), (3, 3)])
def test_workers_as_a_number_is_that_number(value, expected):
    assert config.check("workers", value) == expected


@pytest.mark.parametrize("value", ["many", "0", "-1", "257", "2.5", "", "autox", True, None])
def test_a_bad_workers_value_names_the_setting_and_says_what_it_takes(value):
    with pytest.raises(config.ConfigError) as raised:
        config.check("workers", value)
    message = str(raised.value)
    assert message.startswith("WORKERS must be auto or an integer from 1 to 256, got ")
    assert "\n" not in message
