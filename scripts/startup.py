#!/usr/bin/env python3
"""Process start-up of `tl` against /bin/true: median wall milliseconds of 300 runs each of
`/bin/true`, `tl --version`, and a one-fact program with `--device cpu` and with the default
`--device auto`. Usage: scripts/startup.py TL PROGRAM (e.g. target/release/tl one.tl)."""
import subprocess, sys, time, statistics
tl, prog = sys.argv[1], sys.argv[2]
def t(cmd, n=300):
    xs = []
    for _ in range(n):
        a = time.perf_counter(); subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); xs.append(time.perf_counter() - a)
    return statistics.median(xs) * 1000
for label, cmd in [("/bin/true", ["/bin/true"]), ("tl --version", [tl, "--version"]),
                   ("tl run --device cpu", [tl, "run", "--device", "cpu", prog]),
                   ("tl run (auto)", [tl, "run", prog])]:
    print(f"| `{label}` | {t(cmd):.2f} |")
