// The worker pool's and the dynamic supervisor's costs (issue 11, item 6), beside
// in-binary floors, so that ratios come from one process and one sitting. How to run
// it and the figures: bench/POOL.md.
//
//   floor_post_job/threads:T      the floor under a pool job: asio::post of a job, which
//                                 posts its completion; 1,000 in flight (each completion
//                                 posts the next job) on an io_context run by T threads.
//                                 op = one job. items_per_second = jobs/s.
//   pool_jobs/threads:T/workers:W a worker_pool of W workers (queue 1,024), 1,000 submits
//                                 in flight: each answer submits the next job. The job is
//                                 trivial (an awaitable returning result<int> at once); the
//                                 answers are bound to the io_context's executor. T = 1:
//                                 no strands (child_strands = false); T = 2: the pool on a
//                                 strand, each worker on its own strand, as a multi-threaded
//                                 program must. op = one job.
//   pool_crash_restart            one job that throws: its submitter is answered with
//                                 job_crashed, the worker is reported, restarted and back
//                                 (checked: stats().restarts + 1, the worker alive again).
//                                 One worker, intensity 1,000,000 in 1 s on a manual clock
//                                 advanced 2 us per cycle, muted logger. op = one cycle.
//                                 POOLBENCH_ITERS=n fixes its iteration count, and
//                                 callgrind's --toggle-collect='*crash_cycle*' counts the
//                                 cycles alone (as supervisor_bench's SUPBENCH_ITERS).
//   dyn_start_10k, dyn_start_100k dynamic_supervisor<int>::async_start_child x N, one after
//                                 another from a driver coroutine (as supervisor_bench's
//                                 start_10k), each child the minimal one: a run that
//                                 co_awaits device.async_receive(). Time and heap bytes
//                                 (mallinfo2) per child.
//   dyn_terminate_100k            then async_terminate_child of each by device id (brutal),
//                                 one after another: time per child.
//
// Every case also runs with `/reactor`: a pending timer and an open loopback TCP pair
// with a receive outstanding on the same context, so that Asio's reactor runs between
// handlers as it does in a real service (see DESIGN.md, Performance): the benches' shared
// bench/live_reactor.hpp (the figures in bench/POOL.md were taken with an equivalent helper
// of this file's own, before that one landed).

#include "live_reactor.hpp"

#include <backplane/backplane.hpp>
#include <backplane/supervisor.hpp>

#include <benchmark/benchmark.h>
#include <malloc.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using backplane::device;
using backplane::device_id;
using result_t = boost::system::result<int, boost::system::error_code>;
using clock_type = std::chrono::steady_clock;

constexpr int in_flight = 1'000;

void expect(bool ok, char const* what) {
  if (!ok) {
    std::fprintf(stderr, "pool_bench: check failed: %s\n", what);
    std::abort();
  }
}

using reactor = bench::live_reactor;

std::shared_ptr<spdlog::logger> muted_logger() {
  static auto const l = [] {
    auto logger = std::make_shared<spdlog::logger>("poolbench-muted",
                                                   std::make_shared<spdlog::sinks::null_sink_mt>());
    logger->set_level(spdlog::level::off);
    return logger;
  }();
  return l;
}

std::size_t run_until_idle(asio::io_context& ctx) {
  std::size_t total = 0;
  while (std::size_t n = ctx.poll()) total += n;
  if (ctx.stopped()) ctx.restart();
  return total;
}

std::size_t heap_in_use() {
  struct mallinfo2 mi = ::mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

/// Runs `ctx` on `threads` threads until `done` (set by the last answer).
void run_threads(asio::io_context& ctx, int threads) {
  std::vector<std::thread> more;
  for (int i = 1; i < threads; ++i) more.emplace_back([&] { ctx.run(); });
  ctx.run();
  for (auto& t : more) t.join();
  ctx.restart();
}

// ------------------------------------------------------------- floors ----

struct post_floor {
  asio::io_context& ctx;
  std::atomic<std::int64_t> left;
  std::atomic<std::int64_t> answered{0};
  std::int64_t total;
  void job() {
    // The job posts its completion, as a pool answers a submitter.
    asio::post(ctx, [this] { done(); });
  }
  void done() {
    if (answered.fetch_add(1, std::memory_order_relaxed) + 1 == total) return;
    // Each answer submits the next job, as the pool cases do.
    if (left.fetch_sub(1, std::memory_order_relaxed) > 0) asio::post(ctx, [this] { job(); });
  }
};

// A floor that times whole batches: n jobs, 1,000 in flight.
double floor_batch(int threads, bool live, std::int64_t n) {
  asio::io_context ctx(threads);
  std::optional<reactor> r;
  if (live) r.emplace(ctx);
  post_floor f{ctx, {n - in_flight}, {0}, n};
  auto t0 = clock_type::now();
  std::int64_t const first = std::min<std::int64_t>(in_flight, n);
  for (std::int64_t i = 0; i < first; ++i) asio::post(ctx, [&f] { f.job(); });
  if (live) {
    // The reactor's waits are work: stop once every job is answered.
    std::thread watcher([&] {
      while (f.answered.load(std::memory_order_relaxed) < n) std::this_thread::yield();
      asio::post(ctx, [&] { r->stop_waiting(); });
    });
    run_threads(ctx, threads);
    watcher.join();
  } else {
    run_threads(ctx, threads);
  }
  expect(f.answered.load() == n, "every floor job answered");
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

constexpr std::int64_t batch = 200'000;

void floor_post_job_batch(benchmark::State& state, int threads, bool live) {
  for (auto _ : state) state.SetIterationTime(floor_batch(threads, live, batch));
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["ns_per_job"] =
      benchmark::Counter(static_cast<double>(state.iterations() * batch),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// ---------------------------------------------------------- pool jobs ----

asio::awaitable<result_t> trivial_job() { co_return 1; }

struct pool_driver {
  backplane::worker_pool& pool;
  asio::io_context::executor_type ex;
  std::int64_t total;
  std::atomic<std::int64_t> left;
  std::atomic<std::int64_t> answered{0};
  std::atomic<std::int64_t> errors{0};
  std::function<void()> on_done;
  void submit() {
    pool.async_submit(trivial_job(),
                      asio::bind_executor(ex, [this](std::exception_ptr e, result_t) {
                        if (e) errors.fetch_add(1, std::memory_order_relaxed);
                        if (left.fetch_sub(1, std::memory_order_relaxed) > 0) submit();
                        if (answered.fetch_add(1, std::memory_order_relaxed) + 1 == total)
                          on_done();
                      }));
  }
};

double pool_batch(int threads, int workers, bool live, std::int64_t n) {
  asio::io_context ctx(threads);
  std::optional<reactor> r;
  if (live) r.emplace(ctx);
  backplane::worker_pool_spec spec;
  spec.name = "bench";
  spec.workers = static_cast<std::size_t>(workers);
  spec.queue_capacity = 1024;
  spec.logger = muted_logger();
  spec.child_strands = threads > 1;
  asio::any_io_executor pex = threads > 1 ? asio::any_io_executor(asio::make_strand(ctx))
                                          : asio::any_io_executor(ctx.get_executor());
  auto pool = backplane::worker_pool::start(pex, spec);
  pool_driver d{pool, ctx.get_executor(), n, {n - in_flight}, {0}, {0}, {}};
  d.on_done = [&] {
    pool.async_stop(0s, [&](boost::system::error_code, backplane::pool_stats s) {
      expect(s.completed == static_cast<std::uint64_t>(n), "every job completed");
      if (r) r->stop_waiting();
    });
  };
  run_until_idle(ctx);  // the workers are up
  auto t0 = clock_type::now();
  for (int i = 0; i < in_flight; ++i) asio::post(ctx, [&d] { d.submit(); });
  run_threads(ctx, threads);
  double const s = std::chrono::duration<double>(clock_type::now() - t0).count();
  expect(d.answered.load() == n && d.errors.load() == 0, "every pool job answered with a value");
  return s;
}

void pool_jobs(benchmark::State& state, int threads, int workers, bool live) {
  for (auto _ : state) state.SetIterationTime(pool_batch(threads, workers, live, batch));
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["ns_per_job"] =
      benchmark::Counter(static_cast<double>(state.iterations() * batch),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// ------------------------------------------------------- crash restart ----

asio::awaitable<result_t> crashing_job() {
  throw std::runtime_error("boom");
  co_return 0;
}

// One cycle, apart so that callgrind can count it alone
// (--toggle-collect='*crash_cycle*').
[[gnu::noinline]] void crash_cycle(asio::io_context& ctx, backplane::worker_pool& pool,
                                   backplane::manual_clock& clock) {
  bool answered = false;
  pool.async_submit(crashing_job(), [&](std::exception_ptr e, result_t) {
    expect(e != nullptr, "job_crashed");
    answered = true;
  });
  run_until_idle(ctx);
  clock.advance(2us);
  expect(answered, "the crashed job answered");
}

void pool_crash_restart(benchmark::State& state, bool live) {
  asio::io_context ctx(1);
  std::optional<reactor> r;
  if (live) r.emplace(ctx);
  auto clock = std::make_shared<backplane::manual_clock>();
  backplane::worker_pool_spec spec;
  spec.name = "bench";
  spec.workers = 1;
  spec.max_restarts = 1'000'000;
  spec.period = 1s;
  spec.clock = clock;
  spec.logger = muted_logger();
  spec.child_strands = false;
  auto pool = backplane::worker_pool::start(ctx.get_executor(), spec);
  run_until_idle(ctx);
  std::uint64_t restarts = 0;
  for (auto _ : state) {
    crash_cycle(ctx, pool, *clock);
    ++restarts;
  }
  auto s = pool.stats();
  expect(s.restarts == restarts && s.workers_alive == 1, "each crash restarted the worker");
  bool stopped = false;
  pool.async_stop(0s, [&](boost::system::error_code, backplane::pool_stats) { stopped = true; });
  run_until_idle(ctx);
  expect(stopped, "stopped");
}

// ---------------------------------------------------- dynamic children ----

asio::awaitable<void> parked(device& d) {
  (void)co_await d.async_receive(asio::as_tuple(asio::use_awaitable));
}

struct dyn_round {
  double start_s = 0;
  double terminate_s = 0;
  double bytes = 0;
};

asio::awaitable<void> start_n(backplane::dynamic_supervisor<int> sup, int n,
                              std::vector<device_id>* ids) {
  for (int i = 0; i < n; ++i) {
    auto [ec, id] = co_await sup.async_start_child(i, asio::as_tuple(asio::deferred));
    expect(!ec, "child started");
    ids->push_back(id);
  }
}

asio::awaitable<void> terminate_all(backplane::dynamic_supervisor<int> sup,
                                    std::vector<device_id> const* ids) {
  for (device_id id : *ids) {
    auto [ec] = co_await sup.async_terminate_child(id, asio::as_tuple(asio::deferred));
    expect(!ec, "child terminated");
  }
}

dyn_round dyn_start_terminate(int n, bool live) {
  asio::io_context ctx(1);
  std::optional<reactor> r;
  if (live) r.emplace(ctx);
  backplane::dynamic_supervisor_spec spec;
  spec.name = "bench";
  spec.logger = muted_logger();
  spec.child_strands = false;
  spec.shutdown = backplane::shutdown_policy::brutal();
  auto sup = backplane::dynamic_supervisor<int>::start(ctx.get_executor(), spec,
                                                       [](device& d, int) { return parked(d); });
  run_until_idle(ctx);
  std::vector<device_id> ids;
  ids.reserve(static_cast<std::size_t>(n));
  dyn_round out;
  std::size_t const heap0 = heap_in_use();
  auto t0 = clock_type::now();
  asio::co_spawn(ctx, start_n(sup, n, &ids), asio::detached);
  run_until_idle(ctx);
  out.start_s = std::chrono::duration<double>(clock_type::now() - t0).count();
  out.bytes = static_cast<double>(heap_in_use() - heap0) / n;
  expect(static_cast<int>(ids.size()) == n, "all started");
  t0 = clock_type::now();
  asio::co_spawn(ctx, terminate_all(sup, &ids), asio::detached);
  run_until_idle(ctx);
  out.terminate_s = std::chrono::duration<double>(clock_type::now() - t0).count();
  bool stopped = false;
  sup.async_stop([&](boost::system::error_code, backplane::supervisor_exit) { stopped = true; });
  run_until_idle(ctx);
  expect(stopped, "stopped");
  return out;
}

void dyn_case(benchmark::State& state, int n, bool live, bool terminate) {
  double total = 0, bytes = 0;
  for (auto _ : state) {
    auto r = dyn_start_terminate(n, live);
    double const t = terminate ? r.terminate_s : r.start_s;
    state.SetIterationTime(t);
    total += t;
    bytes += r.bytes;
  }
  auto const iters = static_cast<double>(state.iterations());
  state.counters["ns_per_child"] = total / iters / n * 1e9;
  if (!terminate) state.counters["bytes_per_child"] = bytes / iters;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  // POOLBENCH_ITERS=n fixes pool_crash_restart's iteration count (for
  // callgrind: instructions per cycle = total / n).
  char const* fixed = std::getenv("POOLBENCH_ITERS");
  auto stats = [](benchmark::internal::Benchmark* b) {
    b->ComputeStatistics(
        "min", [](std::vector<double> const& v) { return *std::min_element(v.begin(), v.end()); });
    return b;
  };
  for (bool live : {false, true}) {
    std::string const sfx = live ? "/reactor" : "";
    for (int threads : {1, 2}) {
      stats(benchmark::RegisterBenchmark(
                ("floor_post_job/threads:" + std::to_string(threads) + sfx).c_str(),
                [=](benchmark::State& s) { floor_post_job_batch(s, threads, live); }))
          ->UseManualTime()
          ->Iterations(5);
      for (int workers : {1, 2, 8}) {
        stats(benchmark::RegisterBenchmark(
                  ("pool_jobs/threads:" + std::to_string(threads) +
                   "/workers:" + std::to_string(workers) + sfx)
                      .c_str(),
                  [=](benchmark::State& s) { pool_jobs(s, threads, workers, live); }))
            ->UseManualTime()
            ->Iterations(5);
      }
    }
    auto* crash = stats(
        benchmark::RegisterBenchmark(("pool_crash_restart" + sfx).c_str(),
                                     [=](benchmark::State& s) { pool_crash_restart(s, live); }));
    if (fixed) crash->Iterations(std::stoll(fixed));
    for (int n : {10'000, 100'000}) {
      stats(benchmark::RegisterBenchmark(
                (std::string("dyn_start_") + (n == 10'000 ? "10k" : "100k") + sfx).c_str(),
                [=](benchmark::State& s) { dyn_case(s, n, live, false); }))
          ->UseManualTime()
          ->Iterations(3);
    }
    stats(benchmark::RegisterBenchmark(
              ("dyn_terminate_100k" + sfx).c_str(),
              [=](benchmark::State& s) { dyn_case(s, 100'000, live, true); }))
        ->UseManualTime()
        ->Iterations(3);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
