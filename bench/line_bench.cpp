// The seed's 6 line benchmarks (async-backplane benches/line.rs), under the
// seed's names. Here the two devices are linked purely through lines:
// l1 = d1.line(), l2 = d2.line(), l1.link_line(l2, mode).
//
//   create_destroy               copy a line out of a live device and destroy it (one atomic
//                                increment and one decrement).
//   line_monitor_drop            d1 monitors d2; l1, then d1 (the monitor), then d2 are
//                                dropped: no notification is delivered.
//   line_monitor_drop_notify     d1 monitors d2; d2 is dropped first, d1 receives the
//                                notification with try_receive, then is dropped.
//   line_monitor_error_notify    d1 monitors d2; d2.disconnect(fault::error()), d1 receives.
//   line_peer_drop_notify        peers; as the seed, d2 is dropped first and d1 receives.
//   line_peer_error_notify       peers; d2.disconnect(fault::error()), d1 receives.
//
// Each iteration creates both devices. The seed only delivers the
// notification; we also take it out of the mailbox. Results go through
// benchmark::DoNotOptimize.

#include <backplane/backplane.hpp>
#include "fixed_iterations.hpp"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <optional>

namespace {

using backplane::device;
using backplane::fault;
using backplane::line;
using backplane::link_mode;

void expect(bool ok) {
  if (!ok) std::abort();
}

void receive_one(device& d) {
  auto m = d.try_receive();
  expect(m.has_value());
  benchmark::DoNotOptimize(m);
}

void link(device& d1, device& d2, link_mode mode) {
  line l1 = d1.line();
  line l2 = d2.line();
  auto ec = l1.link_line(l2, mode);
  expect(!ec);
  benchmark::DoNotOptimize(l1);
}

void create_destroy(benchmark::State& state) {
  device d;
  for (auto _ : state) {
    line l = d.line();
    benchmark::DoNotOptimize(l);
  }
}

void line_monitor_drop(benchmark::State& state) {
  for (auto _ : state) {
    std::optional<device> d1(std::in_place);
    device d2;
    link(*d1, d2, link_mode::monitor);
    d1.reset();  // the monitor goes first: nobody to notify when d2 goes
    benchmark::DoNotOptimize(d2);
  }
}

void drop_notify(benchmark::State& state, link_mode mode) {
  for (auto _ : state) {
    device d1;
    std::optional<device> d2(std::in_place);
    link(d1, *d2, mode);
    d2.reset();  // dropped: d1 hears disconnected{d2, fault::drop()}
    receive_one(d1);
  }
}

void error_notify(benchmark::State& state, link_mode mode) {
  for (auto _ : state) {
    device d1;
    device d2;
    link(d1, d2, mode);
    d2.disconnect(fault::error());
    receive_one(d1);
  }
}

}  // namespace

BENCHMARK(create_destroy)->Apply(bench::fixed_iterations);
BENCHMARK(line_monitor_drop)->Apply(bench::fixed_iterations);
BENCHMARK_CAPTURE(drop_notify, monitor, link_mode::monitor)
    ->Name("line_monitor_drop_notify")
    ->Apply(bench::fixed_iterations);
BENCHMARK_CAPTURE(error_notify, monitor, link_mode::monitor)
    ->Name("line_monitor_error_notify")
    ->Apply(bench::fixed_iterations);
BENCHMARK_CAPTURE(drop_notify, peer, link_mode::peer)
    ->Name("line_peer_drop_notify")
    ->Apply(bench::fixed_iterations);
BENCHMARK_CAPTURE(error_notify, peer, link_mode::peer)
    ->Name("line_peer_error_notify")
    ->Apply(bench::fixed_iterations);

BENCHMARK_MAIN();
