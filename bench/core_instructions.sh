#!/bin/bash
# Instructions per op of the core's 17 cases, from callgrind (deterministic, unlike time):
# (I(12000) - I(2000)) / 10000 of two whole-program runs of one case each, which cancels
# start-up. Needs valgrind and a bench build whose cases honour BENCH_ITERS (fixed_iterations.hpp).
#
# Usage: bench/core_instructions.sh BUILD/bench      (prints "binary case instructions")
set -euo pipefail
dir=${1:?usage: bench/core_instructions.sh BUILD/bench}
device_cases="create_destroy device_monitor_drop device_monitor_drop_notify device_monitor_error_notify
  device_peer_drop_notify device_peer_error_notify line_monitor_drop line_monitor_drop_notify
  line_monitor_error_notify line_peer_drop_notify line_peer_error_notify"
line_cases="create_destroy line_monitor_drop line_monitor_drop_notify line_monitor_error_notify
  line_peer_drop_notify line_peer_error_notify"
count() {  # binary case iterations
  BENCH_ITERS=$3 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" \
    --benchmark_filter="^$2/" 2>&1 | awk '/Collected/ {print $4}'
}
for binary in device line; do
  cases=${binary}_cases
  for c in ${!cases}; do
    a=$(count "$dir/${binary}_bench" "$c" 2000)
    z=$(count "$dir/${binary}_bench" "$c" 12000)
    echo "${binary}_bench $c $(((z - a) / 10000))"
  done
done
