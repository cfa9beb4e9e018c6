#!/usr/bin/env python3
"""Process start-up of `tl` against /bin/true: median wall milliseconds of 300 runs each of
`/bin/true`, `tl --version`, and a one-fact program with `--device cpu` and with the default
`--device auto`, for each binary given, in one run (the binaries' runs interleaved, so that
the machine's state is the same for all). Usage: scripts/startup.py PROGRAM TL [TL …]
(e.g. `one.tl target/release/tl /tmp/tl-before`)."""
import statistics
import subprocess
import sys
import time

prog, binaries = sys.argv[1], sys.argv[2:]
cases = [("/bin/true", lambda tl: ["/bin/true"]), ("tl --version", lambda tl: [tl, "--version"]),
         ("tl run --device cpu", lambda tl: [tl, "run", "--device", "cpu", prog]),
         ("tl run (auto)", lambda tl: [tl, "run", prog])]
times = {(label, tl): [] for label, _ in cases for tl in binaries}
for _ in range(300):
    for label, cmd in cases:
        for tl in binaries:
            a = time.perf_counter()
            subprocess.run(cmd(tl), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[(label, tl)].append(time.perf_counter() - a)
print("| command | " + " | ".join(f"`{tl}` ms" for tl in binaries) + " |")
print("| --- |" + " ---: |" * len(binaries))
for label, _ in cases:
    row = " | ".join(f"{statistics.median(times[(label, tl)]) * 1000:.2f}" for tl in binaries)
    print(f"| `{label}` | {row} |")
