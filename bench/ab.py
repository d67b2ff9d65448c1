"""Two builds of our server side by side: CPU time per request, in alternating rounds.

    bench/.venv/bin/python bench/ab.py REV [--rounds 30] [--workload hello-keepalive]

The working tree's http_server against the one at git revision ``REV``: both servers run at
once, pinned to the server core, and wrk, on the other core, drives one of them at a time for
1 s, the order flipped every round. The machine's load, which can move a server's CPU time
per request by a factor of two within minutes on a shared virtual machine, then falls on both
alike, and a change of a few percent, which two separate runs of `make bench` cannot show,
can be seen. It prints, for each build, the requests, CPU microseconds per request (user and
system, from /proc), context switches per 1,000 requests and the p99 latency of all its
rounds' requests, and the working tree's ratio.
Instruction counts (`make bench-instructions`) do not see the kernel or thread switches;
this does.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from measure import ROUND_SECONDS, merge_rounds, static_folder, take_turns
from servers import Server
from workloads import BY_NAME, ROOT, WORK, Workload

BUILD_PATHS = ("bench/apps", "{{cookiecutter.project}}")  # what ours.py runs, and imports


def export_revision(rev: str, dest: Path) -> Path:
    """The bench apps and the template of ``rev``, extracted under ``dest``; their apps folder.

    From `git archive`, so that the working tree and its worktrees are left alone."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev,
                              *BUILD_PATHS], capture_output=True)
    if archive.returncode != 0:
        raise SystemExit(f"error: cannot read revision {rev!r}: "
                         f"{archive.stderr.decode(errors='replace').strip()}")
    with tempfile.TemporaryFile() as tar_file:
        tar_file.write(archive.stdout)
        tar_file.seek(0)
        with tarfile.open(fileobj=tar_file) as tar:
            tar.extractall(dest, filter="data")
    return dest / "bench" / "apps"


def compare(servers: dict[str, Server], workload: Workload, rounds: int) -> dict[str, dict]:
    """Each server's rounds merged: requests, CPU seconds and context switches among them."""
    results, failed = take_turns(servers, workload, rounds)
    if failed:
        raise RuntimeError("; ".join(f"{name}: {why}" for name, why in failed.items()))
    return {name: merge_rounds(these) for name, these in results.items()}


def report(totals: dict[str, dict], base: str, tree: str) -> str:
    lines = [f"{'build':24} {'requests':>10} {'CPU us/req':>11} {'switches/1k req':>16} "
             f"{'p99 ms':>7}"]
    per_request = {}
    for name, total in totals.items():
        requests = total["requests"] or 1
        per_request[name] = 1e6 * total["cpu"] / requests
        lines.append(f"{name:24} {total['requests']:>10,} {per_request[name]:>11.1f} "
                     f"{1000 * total['switches'] / requests:>16.1f} {total['p99_ms']:>7.2f}")
    lines.append(f"{tree} / {base}: CPU per request x{per_request[tree] / per_request[base]:.3f}, "
                 f"requests x{totals[tree]['requests'] / (totals[base]['requests'] or 1):.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the git revision to compare the working tree with")
    parser.add_argument("--rounds", type=int, default=30, help="rounds of 1 s per build")
    parser.add_argument("--workload", default="hello-keepalive",
                        choices=[w.name for w in BY_NAME.values() if w.wrk and
                                 "ours" in w.servers])
    parser.add_argument("--server-args", default="",
                        help="more options for both servers' ours.py, e.g. '--blocked-after 1'")
    opts = parser.parse_args(argv)
    if opts.rounds < 1:
        parser.error("--rounds must be 1 or more")
    workload = BY_NAME[opts.workload]
    static_dir = static_folder(WORK)
    base, tree = f"ours at {opts.rev}", "ours (working tree)"
    with tempfile.TemporaryDirectory(dir=WORK) as folder:
        base_apps = export_revision(opts.rev, Path(folder))
        extra = opts.server_args.split()
        servers = {base: Server("ours", static_dir, tag="ab-base", extra_args=extra,
                                apps=base_apps),
                   tree: Server("ours", static_dir, tag="ab-tree", extra_args=extra)}
        try:
            for server in servers.values():
                server.start("/")
            totals = compare(servers, workload, opts.rounds)
        except RuntimeError as error:
            raise SystemExit(f"error: {error}") from None
        finally:
            for server in servers.values():
                server.stop()
    print(f"{workload.label}: {opts.rounds} rounds of {ROUND_SECONDS} s per build, "
          f"load average now {os.getloadavg()[0]:.2f}")
    print(report(totals, base, tree))


if __name__ == "__main__":
    sys.exit(main())
