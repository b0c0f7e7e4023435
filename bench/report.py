#!/usr/bin/env python3
"""Runs the three bench binaries once and prints bench/README.md's table.

Usage: python3 bench/report.py [BUILD_DIR/bench]   (default: build-bench/bench)

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
        name = b["run_name"].split("/")[0]
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


def main():
    bench_dir = sys.argv[1] if len(sys.argv) > 1 else "build-bench/bench"
    device = run(os.path.join(bench_dir, "device_bench"))
    line = run(os.path.join(bench_dir, "line_bench"))
    co = run(os.path.join(bench_dir, "coroutine_bench"))

    floor_sum = co["floor_co_spawn"][0] + co["floor_post_deferred"][0]
    real_sum = co["floor_co_spawn"][2] + co["floor_post_deferred"][2]
    print(f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}")
    print(f"- machine: nproc {os.cpu_count()}, {cpu_model()}, {platform.system()} "
          f"{platform.release()}")
    print(f"- command: `python3 bench/report.py {bench_dir}` (each binary: `{' '.join(FLAGS[:-1])}`)")
    print("- figures: ns per op, median of 5 repetitions: CPU time (real time in brackets)")
    print()
    print("| binary | case | ours (median ns) | target | peer (ns) | floor |")
    print("|---|---|--:|---|---|---|")
    for name, (t, _, r) in ordered(device, SEED_DEVICE):
        target = "<= 40" if name == "create_destroy" else "<= 100"
        peer = f"async-backplane {SEED_DEVICE.get(name, '?')}"
        print(f"| device_bench | {name} | {ns(t)} ({ns(r)}) | {target} | {peer} | |")
    for name, (t, _, r) in ordered(line, SEED_LINE):
        target = "" if name == "create_destroy" else "<= 100"
        peer = f"async-backplane {SEED_LINE.get(name, '?')}"
        print(f"| line_bench | {name} | {ns(t)} ({ns(r)}) | {target} | {peer} | |")
    for name, (t, b, r) in ordered(co, CO_ORDER):
        if name.startswith("floor_"):
            print(f"| coroutine_bench | {name} | {ns(t)} ({ns(r)}) | | | (floor) |")
        elif name.startswith("bytes_"):
            print(f"| coroutine_bench | {name} | {b['bytes_per_device']:,.0f} bytes | | "
                  f"OTP process ~2,700 B; CAF actor ~1,250-1,300 B | |")
        else:
            target = SPAWN_TARGET if name in ("spawn_exit", "monitor_down") else ""
            print(f"| coroutine_bench | {name} | {ns(t)} ({ns(r)}) | {target} | "
                  f"{COROUTINE_PEERS.get(name, '')} | {t / floor_sum:.2f}x ({r / real_sum:.2f}x) "
                  f"of co_spawn + post_deferred = {ns(floor_sum)} ({ns(real_sum)}) |")


if __name__ == "__main__":
    main()
