#!/usr/bin/env python3
"""Records and tables of the logic benchmark (scripts/bench-logic.sh, scripts/gpu-logic.sh).

  logic_report.py record RESULTS.jsonl --system S --workload W --program P --nodes N --edges M
                         --run I --rc RC --time TIMEFILE --stdout OUT --stderr ERR --timeout T
      Appends one JSON line for one measured process: wall seconds and peak RSS (KiB) from GNU
      time's `%e %M %U %S` line, status (ok / timeout / oom / error), and the tuple count read from
      the process's stdout (TL: the `N` query of `tl run --json`; the Ascent peer: its only
      line). Exits 1 when the process did not finish well, so the caller stops repeating it.

  logic_report.py table RESULTS.jsonl --layout cpu|gpu
      Prints the Markdown table: per workload and system the median wall time of the timed runs
      (run 0 is the warm-up, not counted) and the largest peak RSS among them, and whether all
      systems agree on the count.
"""

import argparse
import json
import statistics
import sys

# System labels, as bench-logic.sh and gpu-logic.sh record them.
TL, SEQ, PAR = "tl", "ascent-seq", "ascent-par"
TL_CUDA, TL_CPU = "tl-cuda", "tl-cpu"
SHOWN = {TL: "TL", SEQ: "ascent!", PAR: "ascent_par!", TL_CUDA: "TL cuda", TL_CPU: "TL cpu"}


def read_count(system, text):
    """The count a process printed, as (integer or None, raw value)."""
    if system.startswith("tl"):
        for line in text.splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if obj.get("query") == "N":
                data = obj.get("data")
                if isinstance(data, list) and len(data) == 1 and isinstance(data[0], (int, float)):
                    return int(round(data[0])), data[0]
                return None, data
        return None, None
    lines = text.strip().splitlines()
    if lines and lines[-1].strip().isdigit():
        return int(lines[-1]), lines[-1].strip()
    return None, None


def record(a):
    time_lines = [l for l in open(a.time).read().splitlines() if l.strip()]
    wall = rss = user = sys_ = None
    if time_lines:  # the last line is the format; a first one may say "Command exited ..."
        try:
            wall, rss, user, sys_ = time_lines[-1].split()
            wall, rss, user, sys_ = float(wall), int(rss), float(user), float(sys_)
        except ValueError:
            pass
    out = open(a.stdout, errors="replace").read()
    err = open(a.stderr, errors="replace").read()
    count, raw = read_count(a.system, out)
    if a.rc in (124, 137):
        status = "timeout"
    elif a.rc != 0 and "memory allocation of" in err:  # Rust's abort under the ulimit -v cap
        status = "oom"
    elif a.rc != 0 or count is None:
        status = "error"
    else:
        status = "ok"
    rec = {"workload": a.workload, "program": a.program, "nodes": a.nodes, "edges": a.edges,
           "system": a.system, "run": a.run, "warmup": a.run == 0, "status": status, "rc": a.rc,
           "wall_s": wall, "clock_s": a.clock_s, "max_rss_kb": rss, "user_s": user,
           "sys_s": sys_,
           "count": count, "raw": raw, "timeout_s": a.timeout,
           "mem_limit_mb": a.mem_limit_mb}
    if a.threads:
        rec["threads"] = a.threads
    if status != "ok":
        rec["stderr_tail"] = err[-2000:]
    with open(a.results, "a") as f:
        f.write(json.dumps(rec) + "\n")
    what = "warm-up" if a.run == 0 else f"run {a.run}"
    shown = {"ok": f"{wall:.2f} s, {rss / 1024:.0f} MB, count {count}",
             "timeout": f"TIMEOUT after {a.timeout} s",
             "oom": f"OUT OF MEMORY (address-space cap {a.mem_limit_mb} MiB)",
             "error": f"ERROR rc {a.rc}: {err.strip()[-300:]}"}[status]
    print(f"    {a.workload} {a.system} {what}: {shown}", file=sys.stderr)
    return 0 if status == "ok" else 1


class Cell:
    """One workload on one system: its timed runs."""

    def __init__(self, recs):
        timed = [r for r in recs if not r["warmup"]]
        bad = [r for r in recs if r["status"] != "ok"]
        self.status = bad[0]["status"] if bad else ("ok" if timed else "missing")
        self.timeout = bad[0]["timeout_s"] if bad else None
        self.mem_limit = bad[0].get("mem_limit_mb") if bad else None
        ok = [r for r in timed if r["status"] == "ok"]
        self.wall = statistics.median(r["wall_s"] for r in ok) if ok and not bad else None
        clocks = [r["clock_s"] for r in ok if r.get("clock_s") is not None]
        self.clock = statistics.median(clocks) if clocks and not bad else None
        self.rss_mb = max(r["max_rss_kb"] for r in ok) / 1024 if ok and not bad else None
        self.counts = sorted({r["count"] for r in recs if r["status"] == "ok"})

    def time(self):
        if self.wall is not None:
            return f"{self.wall:.2f}" if self.wall < 10 else f"{self.wall:.1f}"
        return {"timeout": f"timeout (>{self.timeout} s)", "error": "**error**",
                "oom": f"out of memory (>{self.mem_limit} MiB)",
                "missing": "—"}.get(self.status, "—")

    def mb(self):
        return "—" if self.rss_mb is None else f"{self.rss_mb:.0f}"


def ratio(num, den):
    """num's time over den's. Under 0.1 s GNU time's 10 ms steps are too coarse, so there the
    ratio comes from bash's clock around the processes and is shown in parentheses."""
    if num.wall is None or den.wall is None:
        return "—"
    if min(num.wall, den.wall) >= 0.1:
        return f"{num.wall / den.wall:.2f}"
    if num.clock is None or not den.clock:
        return "—"
    return f"({num.clock / den.clock:.2f})"


def agreement(cells):
    """`yes`, or a loud NO listing each system's count(s)."""
    with_counts = {s: c for s, c in cells.items() if c.counts}
    if not with_counts:
        return "—"
    distinct = {n for c in with_counts.values() for n in c.counts}
    if len(distinct) == 1:
        return "yes" if len(with_counts) > 1 else "only " + SHOWN[next(iter(with_counts))]
    detail = ", ".join(f"{SHOWN[s]} {'/'.join(map(str, c.counts))}" for s, c in with_counts.items())
    return f"**NO** ({detail})"


def table(a):
    recs = [json.loads(l) for l in open(a.results) if l.strip()]
    order, by = [], {}
    for r in recs:
        if r["workload"] not in by:
            order.append(r["workload"])
            by[r["workload"]] = {"meta": r, "systems": {}}
        by[r["workload"]]["systems"].setdefault(r["system"], []).append(r)
    if a.layout == "cpu":
        systems = [TL, SEQ, PAR]
        print("| workload | nodes | edges | tuples | TL s | ascent! s | ascent_par! s "
              "| best ascent / TL | TL MB | ascent MB (of the faster) | counts agree |")
        print("|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---|")
    else:
        systems = [TL_CUDA, TL_CPU, PAR]
        print("| workload | nodes | edges | tuples | TL cuda s | TL cpu s | ascent_par! s "
              "| ascent / TL cuda | ascent / TL cpu | TL cuda MB | TL cpu MB | ascent MB "
              "| counts agree |")
        print("|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---|")
    for w in order:
        meta, got = by[w]["meta"], by[w]["systems"]
        cells = {s: Cell(got.get(s, [])) for s in systems}
        # Ascent's count is exact (u32 tuples in a hash set); TL's only where Ascent has none.
        ref = next((cells[s].counts for s in (SEQ, PAR, TL, TL_CPU, TL_CUDA)
                    if s in cells and len(cells[s].counts) == 1), None)
        tuples = str(ref[0]) if ref else "—"
        head = f"| {w} | {meta['nodes']} | {meta['edges']} | {tuples} "
        if a.layout == "cpu":
            tl, seq, par = cells[TL], cells[SEQ], cells[PAR]
            fast = min((c for c in (seq, par) if c.wall is not None), key=lambda c: c.wall,
                       default=None)
            print(head + f"| {tl.time()} | {seq.time()} | {par.time()} "
                  f"| {ratio(fast, tl) if fast else '—'} | {tl.mb()} "
                  f"| {fast.mb() if fast else '—'} | {agreement(cells)} |")
        else:
            cu, cpu, par = cells[TL_CUDA], cells[TL_CPU], cells[PAR]
            print(head + f"| {cu.time()} | {cpu.time()} | {par.time()} "
                  f"| {ratio(par, cu)} | {ratio(par, cpu)} "
                  f"| {cu.mb()} | {cpu.mb()} | {par.mb()} | {agreement(cells)} |")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("results")
    for k in ("system", "workload", "program", "time", "stdout", "stderr"):
        r.add_argument(f"--{k}", required=True)
    for k in ("nodes", "edges", "run", "rc", "timeout", "mem-limit-mb"):
        r.add_argument(f"--{k}", type=int, required=True)
    r.add_argument("--clock-s", type=float)
    r.add_argument("--threads", type=int)
    t = sub.add_parser("table")
    t.add_argument("results")
    t.add_argument("--layout", choices=["cpu", "gpu"], default="cpu")
    a = p.parse_args()
    sys.exit(record(a) if a.cmd == "record" else table(a))


if __name__ == "__main__":
    main()
