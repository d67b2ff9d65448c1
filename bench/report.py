"""The report of a `make bench` run: the table (text and Markdown), results.json, the chart,
and the table in bench/README.md.

Each figure is printed with its ratio to ours in the same run; rows come from measure.py,
flood_bench.py, uploads.py and instructions.py, in the order of workloads.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path

import flood_bench
import uploads
from servers import ALL_SERVERS, SERVER_NOTES, nginx_binary
from workloads import (
    BENCH,
    CLIENT_CORE,
    CONNECTIONS,
    IDLE_CONNECTIONS,
    KEEP_ALIVE,
    LABELS,
    POST_BYTES,
    ROOT,
    SERVER_CORE,
    STATIC_BYTES,
    TEMPLATE_DIR,
    THREADS,
    WORKLOADS,
)

README = BENCH / "README.md"
INSTR = "instr/req"
TABLE_START = "<!-- bench-table:start -->"
TABLE_END = "<!-- bench-table:end -->"


def labels(quick: bool = False, idle_connections: int = IDLE_CONNECTIONS) -> dict[str, str]:
    """Every row's label, for a full run or a quick one."""
    return {**LABELS, "idle": f"{idle_connections:,} idle keep-alive held",
            **flood_bench.labels(quick), **uploads.labels(quick)}


def ratio(value, ref) -> str:
    if value is None or not ref:
        return ""
    return f" ({value / ref:.2f})"


def cell(row: dict | None, key: str, ref_row: dict | None, fmt: str) -> str:
    if row is None:
        return ""
    if "failed" in row:
        return "failed"
    value = row.get(key)
    if value is None:
        return "-"
    ref = ref_row.get(key) if ref_row and "failed" not in ref_row else None
    return format(value, fmt) + ratio(value, ref)


def instr_cell(row: dict | None, ref_row: dict | None) -> str:
    if row is not None and "instr_failed" in row:
        return "failed"
    return cell(row, "instr_per_req", ref_row, ",.0f") if row else ""


def notes(rows: list[dict]) -> str:
    out = []
    for row in rows:
        if row is None:
            continue
        tag = f"#{row['run']}: " if len(rows) > 1 else ""
        if "failed" in row:
            out.append(tag + " ".join(row["failed"].split())[:100])
            continue
        bits = []
        if row.get("error_count"):
            errs = row.get("errors") or {}
            detail = ",".join(f"{k} {v}" for k, v in errs.items() if v)
            bits.append(f"{row['error_count']} errors" + (f" ({detail})" if detail else ""))
        if row.get("idle"):
            i = row["idle"]
            bits.append(f"held {i['still_open']}/{i['connections_wanted']}, "
                        f"base RSS {row['rss_base_mib']:.1f}")
        if row.get("flood"):
            bits.append(flood_bench.note(row))
        if row.get("upload"):
            bits.append(uploads.note(row))
        if row.get("pids"):
            bits.append(f"{len(row['pids'])} PIDs answered: "
                        + "/".join(str(n) for n in sorted(row["pids"].values(), reverse=True)))
        if row.get("mismatch"):
            bits.append("answer differs from ours")
        if row.get("instructions"):
            i = row["instructions"]
            bits.append(f"instr/req pairs {i['min'] / 1000:,.0f}k-{i['max'] / 1000:,.0f}k")
        if row.get("instr_failed"):
            bits.append("instr/req: " + " ".join(row["instr_failed"].split())[:80])
        if bits:
            out.append(tag + "; ".join(bits))
    return " | ".join(out)


def table_rows(rows: list[dict], runs: int, names: dict[str, str] | None = None
               ) -> tuple[list[str], list[list[str]]]:
    names = names or labels()
    counted = any("instr_per_req" in r or "instr_failed" in r for r in rows)
    header = ["workload", "server"]
    for metric in ("req/s", "req/CPU-s", INSTR, "p99 ms", "RSS MiB"):
        if metric == INSTR:  # counted once, the counts do not drift from run to run
            header += [INSTR] if counted else []
            continue
        for r in range(1, runs + 1):
            header.append(f"{metric} #{r}" if runs > 1 else metric)
    run_tags = "/".join(f"#{r}" for r in range(1, runs + 1))
    header.append("CPU %" if runs == 1 else f"CPU % {run_tags}")
    header.append("notes")
    index = {(r["workload"], r["server"], r["run"]): r for r in rows}
    order_w = [*(w.name for w in WORKLOADS), "idle", *flood_bench.FLOODS, *uploads.UPLOADS,
               "workers", "workers-close"]
    order_s = [ALL_SERVERS[0], flood_bench.ARENA, *ALL_SERVERS[1:], "ours workers=1",
               "ours workers=2"]
    body = []
    for w in order_w:
        for s in order_s:
            these = [index.get((w, s, r)) for r in range(1, runs + 1)]
            if not any(these):
                continue
            ref_name = "ours workers=1" if w.startswith("workers") else "ours"
            refs = [index.get((w, ref_name, r)) for r in range(1, runs + 1)]
            line = [names.get(w, w), s]
            for key, fmt in (("rps", ",.0f"), ("req_per_cpu_s", ",.0f"), ("instr", ""),
                             ("p99_ms", ".2f"), ("rss_mib", ".1f")):
                if key == "instr":
                    line += [instr_cell(these[0], refs[0])] if counted else []
                    continue
                for row, ref in zip(these, refs, strict=True):
                    line.append(cell(row, key, ref, fmt))
            line.append("/".join(
                f"{row['cpu_pct']:.0f}" if row and row.get("cpu_pct") is not None else "-"
                for row in these))
            line.append(notes(these))
            body.append(line)
    return header, body


def render_text(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h)
              for i, h in enumerate(header)]
    widths[-1] = len(header[-1])  # notes: no padding
    def line(cells):
        return "  ".join(c.ljust(w) if i < len(cells) - 1 else c
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
    out = [line(header), line(["-" * w for w in widths[:-1]] + ["-----"])]
    out += [line(r) for r in body]
    return "\n".join(out)


def render_markdown(header: list[str], body: list[list[str]]) -> str:
    def esc(c: str) -> str:
        return c.replace("|", "\\|")
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" if i < 2 or i == len(header) - 1 else "---:"
                          for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in body]
    return "\n".join(out)


def chart(rows: list[dict], runs: int, path: Path, names: dict[str, str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(w.name, "rps", "requests/s") for w in WORKLOADS if w.wrk]
    panels += [("idle", "rss_mib", "RSS MiB, idle connections held"),
               ("idle", "p99_ms", "new client p99 ms, idle held"),
               ("flood", "p99_ms", "new client p99 ms"), ("flood-big", "rss_mib", "RSS MiB after"),
               ("upload-raw", "rss_mib", "RSS MiB at peak"), ("upload-form", "rss_mib",
                                                              "RSS MiB at peak")]
    panels = [p for p in panels if any(r["workload"] == p[0] for r in rows)]
    cols = 2
    nrows = (len(panels) + cols) // cols  # and a place for the workers panel
    fig, axes = plt.subplots(nrows, cols, figsize=(12, 2.6 * nrows), squeeze=False)
    colors = ["#4c72b0", "#dd8452", "#55a868"]
    for ax, (w, key, title) in zip(axes.flat, panels, strict=False):
        servers = [s for s in [ALL_SERVERS[0], flood_bench.ARENA, *ALL_SERVERS[1:]]
                   if any(r["workload"] == w and r["server"] == s for r in rows)]
        height = 0.8 / runs
        for run in range(1, runs + 1):
            values = []
            for s in servers:
                row = next((r for r in rows if r["workload"] == w and r["server"] == s
                            and r["run"] == run), None)
                values.append(row.get(key) or 0 if row and "failed" not in row else 0)
            ys = [i + (run - 1) * height for i in range(len(servers))]
            ax.barh(ys, values, height=height, label=f"run {run}",
                    color=colors[(run - 1) % len(colors)])
        ax.set_yticks([i + height * (runs - 1) / 2 for i in range(len(servers))])
        ax.set_yticklabels(servers, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{names.get(w, w)}: {title}", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    spare = list(axes.flat)[len(panels):]
    workers_rows = [r for r in rows if r["workload"].startswith("workers") and "failed" not in r]
    if spare and workers_rows:
        ax = spare.pop(0)
        labels = [f"{r['server'].replace('ours ', '')}, "
                  f"{'close' if r['workload'].endswith('close') else 'keep-alive'}, "
                  f"{len(r.get('pids') or {})} PID(s)" for r in workers_rows]
        ax.barh(range(len(labels)), [r["rps"] for r in workers_rows], color=colors[2])
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_title("ours workers=1 vs 2, not pinned, wrk -t2: requests/s", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    for ax in spare:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="upper right")
    fig.suptitle("make bench: server on core 0, wrk on core 1, 127.0.0.1 (higher req/s is "
                 "better; lower RSS and p99 are better)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def versions() -> dict:
    out = {"python": platform.python_version()}
    try:
        from importlib.metadata import version

        for pkg in ("waitress", "gunicorn", "uvicorn", "h11", "httptools", "uvloop"):
            out[pkg] = version(pkg)
    except Exception as exc:  # noqa: BLE001 - informative only
        out["error"] = str(exc)
    for cmd, key in (([nginx_binary(), "-v"], "nginx"), (["wrk", "--version"], "wrk")):
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
            out[key] = (done.stderr + done.stdout).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            out[key] = None
    framework = str(TEMPLATE_DIR / "http_server")
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%h %cI", "--", framework],
            capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", framework],
            capture_output=True, text=True, timeout=5).stdout.strip()
        # "+changes": the framework's files differ from that commit (work in progress).
        out["ours_commit"] = commit.replace(" ", "+changes ", 1) if dirty else commit
    except OSError:
        out["ours_commit"] = None
    return out


def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                         "")
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release()}


def update_readme(markdown: str, meta: str) -> None:
    if not README.exists():
        return
    text = README.read_text()
    if TABLE_START not in text or TABLE_END not in text:
        return
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    README.write_text(f"{head}{TABLE_START}\n{meta}\n\n{markdown}\n{TABLE_END}{tail}")


def meta_line(opts, runs_meta: list[dict], mach: dict, vers: dict, finished) -> str:
    loads = ", ".join(f"run {m['run']}: {m['load_before']:.2f} -> {m['load_after']:.2f}"
                      for m in runs_meta)
    return (f"Measured {finished:%Y-%m-%d %H:%M} UTC on {mach['cpu']} ({mach['cores']} cores), "
            f"kernel {mach['kernel']}, Python {vers['python']}; http_server at "
            f"{(vers.get('ours_commit') or '?').split()[0]}; {opts.duration:g} s per workload, "
            f"{CONNECTIONS} connections, {opts.runs} run(s); load average {loads} "
            f"(the benchmark adds about 2). "
            f"Each cell: value (ratio to ours in the same run).")


def settings(opts, servers: list[str]) -> dict:
    return {"runs": opts.runs, "duration_s": opts.duration, "connections": CONNECTIONS,
            "threads": THREADS, "keep_alive_s": KEEP_ALIVE, "post_bytes": POST_BYTES,
            "static_bytes": STATIC_BYTES, "idle_connections": opts.idle_connections,
            "server_core": SERVER_CORE, "client_core": CLIENT_CORE,
            "floods": flood_bench.QUICK_FLOODS if opts.quick else flood_bench.FLOODS,
            "uploads": uploads.QUICK_SHAPE if opts.quick else uploads.SHAPE,
            "servers": {s: SERVER_NOTES[s] for s in servers}}


def write(rows: list[dict], runs_meta: list[dict], opts, servers: list[str], started,
          out_dir: Path, headers_seen: dict, log) -> None:
    """Print the table, write table.txt, table.md, results.json, chart.png into ``out_dir``
    and, for a full run into bench/results/, the table into bench/README.md."""
    names = labels(opts.quick, opts.idle_connections)
    header, body = table_rows(rows, opts.runs, names)
    text = render_text(header, body)
    markdown = render_markdown(header, body)
    finished = dt.datetime.now(dt.timezone.utc)
    mach, vers = machine(), versions()
    meta = meta_line(opts, runs_meta, mach, vers, finished)
    print(f"\n{text}\n\n{meta}")

    (out_dir / "table.txt").write_text(text + "\n\n" + meta + "\n")
    (out_dir / "table.md").write_text(meta + "\n\n" + markdown + "\n")
    for row in rows:
        row.pop("answers", None)
    (out_dir / "results.json").write_text(json.dumps({
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "machine": mach, "versions": vers, "settings": settings(opts, servers),
        "runs": runs_meta, "rows": rows, "response_headers": headers_seen,
    }, indent=1) + "\n")
    try:
        chart(rows, opts.runs, out_dir / "chart.png", names)
    except ImportError as exc:
        log(f"bench: no chart ({exc})")
    if out_dir == BENCH / "results":
        update_readme(markdown, meta)
    log(f"bench: wrote {out_dir.relative_to(ROOT) if out_dir.is_relative_to(ROOT) else out_dir}"
        f"/{{table.txt,table.md,results.json,chart.png}} in "
        f"{(finished - started).total_seconds():.0f} s")


def add_instructions(rows: list[dict], counted: list[dict]) -> None:
    """Each count into run 1's row of its workload and server (a row of its own if none)."""
    index = {(r["workload"], r["server"]): r for r in rows if r["run"] == 1}
    for c in counted:
        row = index.get((c["workload"], c["server"]))
        if row is None:
            row = {"run": 1, "server": c["server"], "workload": c["workload"]}
            rows.append(row)
        if "failed" in c:
            row["instr_failed"] = c["failed"]
        else:
            row["instr_per_req"] = c["instructions"]["per_request"]
            row["instructions"] = {**c["instructions"], "start_s": c["start_s"]}


def instruction_table(counted: list[dict]) -> tuple[list[str], list[list[str]]]:
    """The counts alone: per request (ratio to ours), the pairs' spread, the time they took."""
    header = ["workload", "server", "instructions/request", "pairs: min - max", "seconds (start)",
              "req/s under callgrind"]
    ours = {c["workload"]: c for c in counted if c["server"] == "ours" and "failed" not in c}
    body = []
    for c in counted:
        line = [c["workload"], c["server"]]
        if "failed" in c:
            body.append(line + ["failed: " + " ".join(c["failed"].split())[:80], "", "", ""])
            continue
        i = c["instructions"]
        ref = ours.get(c["workload"])
        line.append(f"{i['per_request']:,.0f}"
                    + ratio(i["per_request"], ref and ref["instructions"]["per_request"]))
        line += [f"{i['min']:,.0f} - {i['max']:,.0f}", f"{i['seconds']:.0f} ({c['start_s']:.0f})",
                 f"{i['requests_per_s_under_callgrind']:.0f}"]
        body.append(line)
    return header, body


def write_instructions(counted: list[dict], opts, started, log) -> None:
    """Print the counts alone and write them to ``opts.out_dir``/instructions.json."""
    header, body = instruction_table(counted)
    finished = dt.datetime.now(dt.timezone.utc)
    print(f"\n{render_text(header, body)}\n")
    (opts.out_dir / "instructions.json").write_text(json.dumps({
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "machine": machine(), "versions": versions(),
        "batches": [opts.small, opts.large], "repeats": opts.repeats, "rows": counted},
        indent=1) + "\n")
    log(f"bench: wrote {opts.out_dir}/instructions.json in "
        f"{(finished - started).total_seconds():.0f} s")
