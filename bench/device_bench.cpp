// The seed's 11 device benchmarks (async-backplane benches/device.rs), under
// the seed's names, so that figures compare one to one.
//
// Every iteration creates two fresh devices d1 and d2 and links them:
// `device_*` cases with d1.link(d2, mode), `line_*` cases with
// d1.link_line(d2.line(), mode), which includes making and dropping the line.
// Then, as in the seed (where the order of the black_box calls is the order
// of the drops):
//
//   create_destroy               create one device and destroy it.
//   *_monitor_drop               d1 monitors d2; d1 (the monitor) is dropped first, then d2:
//                                no notification is delivered, the link is just torn down.
//   *_monitor_drop_notify        d1 monitors d2; d2 is dropped first (fault::drop), d1 is
//                                notified, receives it with try_receive, then is dropped.
//   *_monitor_error_notify       d1 monitors d2; d2.disconnect(fault::error()), d1 receives
//                                the notification, then is dropped.
//   *_peer_drop_notify           d1 and d2 are peers; d1 is dropped first, so d2 (the side
//                                that monitors d1) is notified, receives it, then is dropped.
//   *_peer_error_notify          d1 and d2 are peers; d2.disconnect(fault::error()), d1
//                                receives the notification, then is dropped.
//
// The seed only delivers the notification into the mailbox; we also take it
// out with try_receive (one more lock and a message move), so the `_notify`
// figures include consuming it. Results go through benchmark::DoNotOptimize.
//
// Run: build-bench/bench/device_bench --benchmark_repetitions=5
//        --benchmark_report_aggregates_only=true --benchmark_min_time=0.2

#include <backplane/backplane.hpp>
#include "fixed_iterations.hpp"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <optional>
#include <utility>

namespace {

using backplane::device;
using backplane::fault;
using backplane::link_mode;

// A missing notification would make a figure meaningless; stop loudly.
void expect(bool ok) {
  if (!ok) std::abort();
}

void receive_one(device& d) {
  auto m = d.try_receive();
  expect(m.has_value());
  benchmark::DoNotOptimize(m);
}

enum class how { device, line };

void link(device& d1, device& d2, link_mode mode, how h) {
  if (h == how::device) {
    d1.link(d2, mode);
  } else {
    auto ec = d1.link_line(d2.line(), mode);
    expect(!ec);
  }
}

void create_destroy(benchmark::State& state) {
  for (auto _ : state) {
    device d;
    benchmark::DoNotOptimize(d);
  }
}

template <how H>
void monitor_drop(benchmark::State& state) {
  for (auto _ : state) {
    std::optional<device> d1(std::in_place);
    device d2;
    link(*d1, d2, link_mode::monitor, H);
    benchmark::DoNotOptimize(*d1);
    d1.reset();  // the monitor goes first: nobody to notify when d2 goes
    benchmark::DoNotOptimize(d2);
  }
}

template <how H>
void monitor_drop_notify(benchmark::State& state) {
  for (auto _ : state) {
    device d1;
    std::optional<device> d2(std::in_place);
    link(d1, *d2, link_mode::monitor, H);
    d2.reset();  // dropped: d1 hears disconnected{d2, fault::drop()}
    receive_one(d1);
  }
}

template <how H>
void monitor_error_notify(benchmark::State& state) {
  for (auto _ : state) {
    device d1;
    device d2;
    link(d1, d2, link_mode::monitor, H);
    d2.disconnect(fault::error());
    receive_one(d1);
  }
}

template <how H>
void peer_drop_notify(benchmark::State& state) {
  for (auto _ : state) {
    std::optional<device> d1(std::in_place);
    device d2;
    link(*d1, d2, link_mode::peer, H);
    d1.reset();  // as the seed: d1 goes first, d2 hears it
    receive_one(d2);
  }
}

template <how H>
void peer_error_notify(benchmark::State& state) {
  for (auto _ : state) {
    device d1;
    device d2;
    link(d1, d2, link_mode::peer, H);
    d2.disconnect(fault::error());
    receive_one(d1);
  }
}

}  // namespace

BENCHMARK(create_destroy)->Apply(bench::fixed_iterations);
BENCHMARK(monitor_drop<how::device>)->Name("device_monitor_drop")->Apply(bench::fixed_iterations);
BENCHMARK(monitor_drop_notify<how::device>)
    ->Name("device_monitor_drop_notify")
    ->Apply(bench::fixed_iterations);
BENCHMARK(monitor_error_notify<how::device>)
    ->Name("device_monitor_error_notify")
    ->Apply(bench::fixed_iterations);
BENCHMARK(peer_drop_notify<how::device>)
    ->Name("device_peer_drop_notify")
    ->Apply(bench::fixed_iterations);
BENCHMARK(peer_error_notify<how::device>)
    ->Name("device_peer_error_notify")
    ->Apply(bench::fixed_iterations);
BENCHMARK(monitor_drop<how::line>)->Name("line_monitor_drop")->Apply(bench::fixed_iterations);
BENCHMARK(monitor_drop_notify<how::line>)
    ->Name("line_monitor_drop_notify")
    ->Apply(bench::fixed_iterations);
BENCHMARK(monitor_error_notify<how::line>)
    ->Name("line_monitor_error_notify")
    ->Apply(bench::fixed_iterations);
BENCHMARK(peer_drop_notify<how::line>)
    ->Name("line_peer_drop_notify")
    ->Apply(bench::fixed_iterations);
BENCHMARK(peer_error_notify<how::line>)
    ->Name("line_peer_error_notify")
    ->Apply(bench::fixed_iterations);

BENCHMARK_MAIN();
