// BENCH_ITERS=n fixes the iteration count of every case that applies this, so that callgrind
// gives instructions per op as total / n (Google Benchmark 1.7 has no flag for it):
//
//   BENCH_ITERS=100000 valgrind --tool=callgrind --toggle-collect='*monitor_drop_notify*'
//     build/bench/bench/device_bench --benchmark_filter='^device_monitor_drop_notify$'
//
// (one command line).
#pragma once

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

namespace bench {

inline void fixed_iterations(benchmark::internal::Benchmark* b) {
  if (char const* n = std::getenv("BENCH_ITERS")) b->Iterations(std::stoll(n));
}

}  // namespace bench
