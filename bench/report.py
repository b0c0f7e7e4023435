#!/usr/bin/env python3
"""Runs the three bench binaries once and prints bench/README.md's table.

Usage: python3 bench/report.py [BUILD_DIR/bench] [--baseline BASE_BUILD_DIR/bench]
       (default: build-bench/bench)

--baseline: the bench directory of a build of commit 29bb2fe (the commit the Rust crate was
measured beside, ../shared/anchors/rust/results.md). Its device_bench and line_bench run in
the same sitting and calibrate the host: the Rust figures are scaled by how far 29bb2fe runs
now from its figures in results.md, and the table gives Rust / ours.

Every binary runs with the flags below: 5 repetitions per case, interleaved at
random so that a slow phase of a noisy host hits one repetition of many cases
rather than all repetitions of one case. The figure is the median CPU time per
op: every case is single-threaded, so CPU time is the cost of the op, while
real time also counts the time the (shared, 2-vCPU) VM did not run us; when
the machine is quiet the two agree. Median real time is shown beside it.
The coroutine cases and their Asio floors come from the same process, so their
ratio is the figure to trust; absolute numbers drift by up to 2x between runs
on the 2-vCPU VMs this project uses.
"""

import datetime
import json
import os
import platform
import re
import subprocess
import sys

FLAGS = [
    "--benchmark_repetitions=5",
    "--benchmark_enable_random_interleaving=true",
    "--benchmark_report_aggregates_only=true",
    "--benchmark_min_time=0.2",
    "--benchmark_format=json",
]

# Peers. async-backplane: the seed README's figures (its author's 2015
# MacBook Pro); issue 2 measured 201 ns create_destroy and 385-934 ns for the
# link cases on this project's machine. Erlang/OTP 25 and CAF 0.17: the
# anchors in shared/anchors/*/results.md (default flags / one scheduler).
SEED_DEVICE = {
    "create_destroy": "203", "device_monitor_drop": "524", "device_monitor_drop_notify": "698",
    "device_monitor_error_notify": "726", "device_peer_drop_notify": "897",
    "device_peer_error_notify": "948", "line_monitor_drop": "775",
    "line_monitor_drop_notify": "914", "line_monitor_error_notify": "947",
    "line_peer_drop_notify": "1,037", "line_peer_error_notify": "1,083",
}
SEED_LINE = {
    "create_destroy": "13", "line_monitor_drop": "722", "line_monitor_drop_notify": "916",
    "line_monitor_error_notify": "958", "line_peer_drop_notify": "1,225",
    "line_peer_error_notify": "1,238",
}
COROUTINE_PEERS = {
    "spawn_exit": "OTP 2,050 / 1,633 (+S 1:1); CAF driver 6,979 / 2,927 (1 thread)",
    "spawn_exit_use_awaitable": "",
    "monitor_down": "OTP monitor_down_normal 2,178 / 2,081 (+S 1:1); CAF driver 8,660 / 7,715",
    "monitor_down_manage": "",
    "monitor_down_manage_throwing": "",
}
SPAWN_TARGET = "<= 1.3x floor sum"

# ../shared/anchors/rust/results.md (2026-11-30 11:16-11:19 UTC): async-backplane 0.1.1's own
# cargo bench (Rust r1, r2) beside this project's benches at 29bb2fe (C++ r1, r2), ns/iter.
RUST = {  # (file, case): (rust r1, rust r2, c++ r1, c++ r2)
    ("device", "create_destroy"): (135.03, 136.35, 40.0, 37.9),
    ("device", "device_monitor_drop"): (318.72, 338.82, 124, 150),
    ("device", "device_monitor_drop_notify"): (306.31, 309.61, 152, 161),
    ("device", "device_monitor_error_notify"): (330.73, 332.30, 135, 167),
    ("device", "device_peer_drop_notify"): (354.34, 338.39, 135, 150),
    ("device", "device_peer_error_notify"): (354.38, 356.06, 139, 161),
    ("device", "line_monitor_drop"): (340.59, 335.76, 138, 157),
    ("device", "line_monitor_drop_notify"): (388.18, 388.87, 149, 176),
    ("device", "line_monitor_error_notify"): (399.02, 405.94, 150, 150),
    ("device", "line_peer_drop_notify"): (399.95, 406.45, 149, 147),
    ("device", "line_peer_error_notify"): (416.14, 433.00, 149, 149),
    ("line", "create_destroy"): (11.72, 12.12, 11.5, 11.5),
    ("line", "line_monitor_drop"): (389.34, 388.81, 150, 150),
    ("line", "line_monitor_drop_notify"): (492.60, 495.51, 159, 159),
    ("line", "line_monitor_error_notify"): (471.22, 468.84, 162, 162),
    ("line", "line_peer_drop_notify"): (515.43, 525.21, 159, 161),
    ("line", "line_peer_error_notify"): (544.99, 546.78, 165, 162),
}


CO_ORDER = [
    "spawn_exit", "spawn_exit_use_awaitable", "monitor_down", "monitor_down_manage",
    "monitor_down_manage_throwing", "floor_co_spawn", "floor_post_deferred",
    "floor_post_use_awaitable", "floor_post", "floor_make_shared", "floor_throw_catch",
    "bytes_per_device", "bytes_per_waiting_coroutine",
]


def ordered(medians, order):
    """The cases in the seed's (or our) order, then any new ones."""
    names = [n for n in order if n in medians] + sorted(n for n in medians if n not in order)
    return [(n, medians[n]) for n in names]


def run(binary):
    out = subprocess.run([binary] + FLAGS, check=True, capture_output=True, text=True).stdout
    data = json.loads(out)
    medians = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        # "spawn_exit/reactor/iterations:100" -> "spawn_exit/reactor"
        name = re.sub(r"/(iterations|manual_time|repeats|min_time)[:/].*$|/manual_time$", "",
                      b["run_name"])
        scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
        medians[name] = (b["cpu_time"] * scale, b, b["real_time"] * scale)
    return medians


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def ns(v):
    return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


def rust_column(kind, name, ours, base):
    """Rust / ours, the Rust figure scaled by how far 29bb2fe runs now from results.md."""
    ref = RUST.get((kind, name))
    if ref is None or base is None or name not in base:
        return ""
    rust = (ref[0] + ref[1]) / 2
    host = base[name][0] / ((ref[2] + ref[3]) / 2)
    return (f"Rust {rust * host:,.0f} (29bb2fe now {ns(base[name][0])}): "
            f"**{rust * host / ours:.2f}x**")


def main():
    args = sys.argv[1:]
    base_dir = None
    if "--baseline" in args:
        i = args.index("--baseline")
        base_dir = args[i + 1]
        del args[i:i + 2]
    bench_dir = args[0] if args else "build-bench/bench"
    device = run(os.path.join(bench_dir, "device_bench"))
    line = run(os.path.join(bench_dir, "line_bench"))
    co = run(os.path.join(bench_dir, "coroutine_bench"))
    base_device = base_line = None
    if base_dir:
        base_device = run(os.path.join(base_dir, "device_bench"))
        base_line = run(os.path.join(base_dir, "line_bench"))

    floor_sum = co["floor_co_spawn"][0] + co["floor_post_deferred"][0]
    real_sum = co["floor_co_spawn"][2] + co["floor_post_deferred"][2]
    print(f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}")
    print(f"- machine: nproc {os.cpu_count()}, {cpu_model()}, {platform.system()} "
          f"{platform.release()}")
    print(f"- command: `python3 bench/report.py {bench_dir}` (each binary: `{' '.join(FLAGS[:-1])}`)")
    print("- figures: ns per op, median of 5 repetitions: CPU time (real time in brackets)")
    print()
    print("| binary | case | ours (median ns) | target | peer (ns) | floor, hops/op |")
    print("|---|---|--:|---|---|---|")
    for name, (t, _, r) in ordered(device, SEED_DEVICE):
        target = ">= 5x Rust"
        peer = rust_column("device", name, t, base_device) or \
            f"async-backplane {SEED_DEVICE.get(name, '?')}"
        print(f"| device_bench | {name} | {ns(t)} ({ns(r)}) | {target} | {peer} | |")
    for name, (t, _, r) in ordered(line, SEED_LINE):
        target = "" if name == "create_destroy" else ">= 5x Rust"
        peer = rust_column("line", name, t, base_line) or \
            f"async-backplane {SEED_LINE.get(name, '?')}"
        print(f"| line_bench | {name} | {ns(t)} ({ns(r)}) | {target} | {peer} | |")
    for name, (t, b, r) in ordered(co, CO_ORDER):
        hops = b.get("hops_per_op")
        hops = f"; {hops:.2f} hops/op" if hops is not None else ""
        if name.startswith("floor_"):
            print(f"| coroutine_bench | {name} | {ns(t)} ({ns(r)}) | | | (floor){hops} |")
        elif name.startswith("bytes_"):
            print(f"| coroutine_bench | {name} | {b['bytes_per_device']:,.0f} bytes | | "
                  f"OTP process ~2,700 B; CAF actor ~1,250-1,300 B | |")
        else:
            target = SPAWN_TARGET if name in ("spawn_exit", "monitor_down") else ""
            if name.endswith("/reactor") and name[:-len("/reactor")] in co:
                bare = co[name[:-len("/reactor")]][0]
                target = f"<= 1.5x without reactor: {t / bare:.2f}x"
            print(f"| coroutine_bench | {name} | {ns(t)} ({ns(r)}) | {target} | "
                  f"{COROUTINE_PEERS.get(name, '')} | {t / floor_sum:.2f}x ({r / real_sum:.2f}x) "
                  f"of co_spawn + post_deferred = {ns(floor_sum)} ({ns(real_sum)}){hops} |")


if __name__ == "__main__":
    main()
