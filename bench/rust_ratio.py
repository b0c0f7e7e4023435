#!/usr/bin/env python3
"""The core's 17 cases beside the Rust crate async-backplane, A/B/A/B in one sitting.

Usage: python3 bench/rust_ratio.py OURS_BUILD/bench BASE_BUILD/bench [--rounds N]

BASE_BUILD is a build of commit 29bb2fe with the same flags (Release, -O2): the commit
measured beside the crate in ../shared/anchors/rust/results.md. Each round runs the base's
device_bench and line_bench, then ours (report.py's flags: 5 repetitions interleaved at
random, medians of CPU time). The base's figures of the round calibrate the host: the
crate's figure is scaled by base_now / base_then (29bb2fe's mean in results.md), and the
ratio is scaled Rust / ours, per round. The target of issue 10 is >= 5x.
"""

import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import RUST, run  # noqa: E402  (the crate's figures and the runner live there)


def main():
    args = sys.argv[1:]
    rounds = 2
    if "--rounds" in args:
        i = args.index("--rounds")
        rounds = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    ours_dir, base_dir = args
    results = []  # per round: {(file, case): (base_ns, ours_ns)}
    for _ in range(rounds):
        got = {}
        for kind in ("device", "line"):
            base = run(os.path.join(base_dir, f"{kind}_bench"))
            ours = run(os.path.join(ours_dir, f"{kind}_bench"))
            for name, (t, _, _) in ours.items():
                if (kind, name) in RUST and name in base:
                    got[(kind, name)] = (base[name][0], t)
        results.append(got)
    heads = " | ".join(f"ours r{i + 1} | 29bb2fe r{i + 1} | Rust scaled r{i + 1} | ratio r{i + 1}"
                       for i in range(rounds))
    print(f"| file | case | {heads} | verdict (>= 5x in every round) |")
    print("|---|---|" + "--:|" * (4 * rounds) + "---|")
    for key, (r1, r2, c1, c2) in RUST.items():
        if not all(key in got for got in results):
            continue
        cells = []
        ratios = []
        for got in results:
            base_now, ours = got[key]
            rust = (r1 + r2) / 2 * base_now / ((c1 + c2) / 2)
            ratios.append(rust / ours)
            cells.append(f"{ours:.1f} | {base_now:.1f} | {rust:.0f} | {rust / ours:.2f}x")
        worst = min(ratios)
        if key == ("line", "create_destroy"):
            verdict = "(no target)"
        elif worst >= 5:
            verdict = "met"
        else:
            verdict = f"missed by {5 / worst:.2f}x (median {statistics.median(ratios):.2f}x)"
        print(f"| {key[0]} | {key[1]} | {' | '.join(cells)} | {verdict} |")

if __name__ == "__main__":
    main()
