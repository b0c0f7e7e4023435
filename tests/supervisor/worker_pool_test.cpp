// worker_pool: jobs answered exactly once through crashes, errors, backpressure,
// keyed routing, cancellation, graceful stop and giving up; the accounting
// identity checked after every test that submits.

#include "fixture.hpp"

#include <backplane/supervisor/worker_pool.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <atomic>
#include <future>
#include <random>
#include <thread>

namespace backplane::test {
namespace {

namespace asio = boost::asio;
using result_t = boost::system::result<int, boost::system::error_code>;
using job_t = asio::awaitable<result_t>;

void expect_identity(pool_stats const& s) {
  EXPECT_EQ(s.submitted, s.completed + s.failed + s.crashed + s.cancelled + s.queued + s.running)
      << "submitted " << s.submitted << " completed " << s.completed << " failed " << s.failed
      << " crashed " << s.crashed << " cancelled " << s.cancelled << " queued " << s.queued
      << " running " << s.running;
}

job_t value_job(int v) { co_return v; }
job_t error_job() { co_return make_error_code(boost::system::errc::invalid_argument); }
job_t throw_job(std::string what) {
  throw std::runtime_error(what);
  co_return 0;
}

/// A job that waits until the test opens it, then answers as told.
struct gate {
  explicit gate(asio::any_io_executor ex)
      : timer(std::move(ex), asio::steady_timer::time_point::max()) {}
  asio::steady_timer timer;
  ending how = ending::clean;
  int value = 0;
  bool started = false;
  bool opened = false;
  void open(ending h = ending::clean) {
    how = h;
    opened = true;
    timer.cancel();
  }
};
job_t gated(std::shared_ptr<gate> g) {
  g->started = true;
  auto [ec] = co_await g->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  if (!g->opened) throw boost::system::system_error(ec);  // cancelled
  if (g->how == ending::exception) throw std::runtime_error("boom");
  if (g->how == ending::error) co_return make_error_code(boost::system::errc::io_error);
  co_return g->value;
}

/// One submitter's answer.
struct answer {
  int calls = 0;
  std::exception_ptr e;
  result_t r;
  [[nodiscard]] boost::system::error_code code() const {
    if (!e) return {};
    try {
      std::rethrow_exception(e);
    } catch (boost::system::system_error const& s) {
      return s.code();
    } catch (job_crashed const&) {
      return pool_errc::job_crashed;
    } catch (...) {
    }
    return boost::asio::error::fault;
  }
};
auto record(std::shared_ptr<answer> a) {
  return [a](std::exception_ptr e, result_t r) {
    ++a->calls;
    a->e = e;
    a->r = std::move(r);
  };
}

class WorkerPool : public supervisor_fixture {
 protected:
  std::vector<pool_stats> observed;

  worker_pool_spec pspec(std::size_t workers = 2, std::size_t capacity = 16) {
    worker_pool_spec s;
    s.name = "pool";
    s.workers = workers;
    s.queue_capacity = capacity;
    s.clock = clock;
    s.logger = logger;
    s.observer = [this](supervisor_event const& e, pool_stats const& st) {
      events.push_back(e);
      observed.push_back(st);
    };
    s.child_strands = false;
    return s;
  }
  worker_pool start_pool(worker_pool_spec s) {
    auto p = worker_pool::start(ctx.get_executor(), std::move(s));
    idle();
    return p;
  }
  std::shared_ptr<gate> make_gate(int value = 0) {
    auto g = std::make_shared<gate>(ctx.get_executor());
    g->value = value;
    return g;
  }
  std::shared_ptr<answer> submit(worker_pool& p, job_t job) {
    auto a = std::make_shared<answer>();
    p.async_submit(std::move(job), record(a));
    return a;
  }
  std::shared_ptr<answer> submit(worker_pool& p, job_key key, job_t job) {
    auto a = std::make_shared<answer>();
    p.async_submit(std::move(key), std::move(job), record(a));
    return a;
  }
  pool_stats stop_pool(worker_pool& p, std::chrono::nanoseconds deadline = 1s) {
    auto out = std::make_shared<std::optional<pool_stats>>();
    p.async_stop(deadline, [out](boost::system::error_code, pool_stats s) { *out = s; });
    idle();
    clock->advance(deadline);
    idle();
    EXPECT_TRUE(*out) << "the pool did not stop";
    return out->value_or(pool_stats{});
  }
};

TEST_F(WorkerPool, AnswersEachJobWithItsResult) {
  auto p = start_pool(pspec());
  auto a = submit(p, value_job(7));
  auto b = submit(p, error_job());
  idle();
  EXPECT_EQ(a->calls, 1);
  EXPECT_FALSE(a->e);
  ASSERT_TRUE(a->r.has_value());
  EXPECT_EQ(*a->r, 7);
  EXPECT_EQ(b->calls, 1);
  EXPECT_FALSE(b->e) << "an error the job returns is its answer";
  ASSERT_TRUE(b->r.has_error());
  EXPECT_EQ(b->r.error(), boost::system::errc::invalid_argument);
  auto s = p.stats();
  EXPECT_EQ(s.submitted, 2u);
  EXPECT_EQ(s.completed, 1u);
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.restarts, 0u) << "a job's error leaves its worker alive";
  EXPECT_EQ(s.workers_alive, 2u);
  expect_identity(s);
  expect_identity(stop_pool(p));
}

TEST_F(WorkerPool, WorksWithCoroutineSubmitters) {
  auto p = start_pool(pspec());
  auto o = test::start(ctx, [](worker_pool p) -> asio::awaitable<int> {
    auto r = co_await p.async_submit(value_job(41), asio::use_awaitable);
    auto [e, r2] = co_await p.async_submit(throw_job("x"), asio::as_tuple(asio::use_awaitable));
    co_return *r + (e ? 1 : 0);
  }(p));
  idle();
  ASSERT_TRUE(o->done);
  EXPECT_EQ(o->value, 42);
  expect_identity(stop_pool(p));
}

// A free worker takes queued jobs without suspending: no executor hop per
// job, whether the jobs were queued before it ran or each answer (run inline
// on the worker's thread) submits the next, with one job in flight.
TEST_F(WorkerPool, ABusyWorkerTakesQueuedJobsWithoutAHopPerJob) {
  auto p = start_pool(pspec(1, 256));
  constexpr int jobs = 200;
  std::vector<std::shared_ptr<answer>> queued;
  for (int i = 0; i < jobs; ++i) queued.push_back(submit(p, value_job(i)));
  std::size_t const queued_handlers = idle();
  for (auto const& a : queued) EXPECT_EQ(a->calls, 1);
  EXPECT_LT(queued_handlers, 10u) << "handlers run for " << jobs << " queued jobs";

  int answered = 0;
  std::function<void()> next = [&] {
    p.async_submit(value_job(answered), [&](std::exception_ptr e, result_t r) {
      EXPECT_FALSE(e);
      EXPECT_EQ(r.value(), answered);
      if (++answered < jobs) next();
    });
  };
  next();
  std::size_t const chained_handlers = idle();
  EXPECT_EQ(answered, jobs);
  EXPECT_LT(chained_handlers, 10u) << "handlers run for " << jobs << " chained jobs";
  auto s = p.stats();
  EXPECT_EQ(s.completed, 2u * jobs);
  expect_identity(s);
  expect_identity(stop_pool(p));
}

TEST_F(WorkerPool, CrashMidJobAnswersJobCrashedAndRestartsTheWorker) {
  auto p = start_pool(pspec(1));
  auto g = make_gate();
  auto a = submit(p, gated(g));
  auto after = submit(p, value_job(3));  // queued behind the crash, on the same worker
  idle();
  ASSERT_TRUE(g->started);
  EXPECT_EQ(p.stats().running, 1u);
  expect_identity(p.stats());
  g->open(ending::exception);
  idle();
  ASSERT_EQ(a->calls, 1);
  ASSERT_TRUE(a->e);
  EXPECT_EQ(describe(a->e), "backplane::job_crashed: job #1 crashed: std::runtime_error: boom");
  try {
    std::rethrow_exception(a->e);
  } catch (job_crashed const& c) {
    EXPECT_EQ(c.sequence(), 1u);
    EXPECT_FALSE(c.key());
    EXPECT_EQ(describe(c.cause()), "std::runtime_error: boom");
  }
  EXPECT_EQ(after->calls, 1);
  EXPECT_EQ(*after->r, 3) << "the restarted worker took the next job";
  auto s = p.stats();
  EXPECT_EQ(s.crashed, 1u);
  EXPECT_EQ(s.restarts, 1u);
  EXPECT_EQ(s.workers_alive, 1u);
  expect_identity(s);
  // Reported like any child crash, with the job's identity, and the stats beside it.
  auto crash = of_kind(supervisor_event_kind::child_terminated);
  ASSERT_EQ(crash.size(), 1u);
  EXPECT_EQ(crash[0].supervisor, "pool");
  EXPECT_EQ(crash[0].child, "worker");
  EXPECT_EQ(crash[0].reason.kind, reason_kind::exception);
  EXPECT_EQ(crash[0].reason.exception_type, "backplane::job_crashed");
  EXPECT_EQ(crash[0].reason.message, "job #1 crashed: std::runtime_error: boom");
  EXPECT_EQ(crash[0].reason.job, std::optional<std::uint64_t>(1)) << "the job, typed";
  EXPECT_FALSE(crash[0].reason.job_key) << "an unkeyed job has no key";
  EXPECT_NE(format_text(crash[0]).find(" job=1"), std::string::npos) << format_text(crash[0]);
  EXPECT_EQ(crash[0].action, supervisor_action::restart);
  ASSERT_FALSE(observed.empty());
  EXPECT_EQ(observed.front().crashed, 1u);
  expect_identity(stop_pool(p));
}

// The crash is described where the job's frame catches it (no rethrow to
// describe it): the same words as backplane::describe, for a std::exception
// by its dynamic type, and for anything else by its type alone.
TEST_F(WorkerPool, CrashTextNamesTheThrownTypeAsDescribeDoes) {
  auto p = start_pool(pspec(1));
  auto derived = submit(p, []() -> job_t {
    throw std::out_of_range("row 9");
    co_return 0;
  }());
  auto other = submit(p, []() -> job_t {
    throw 42;
    co_return 0;
  }());
  idle();
  ASSERT_EQ(derived->calls, 1);
  ASSERT_EQ(other->calls, 1);
  try {
    std::rethrow_exception(derived->e);
  } catch (job_crashed const& c) {
    EXPECT_STREQ(c.what(), "job #1 crashed: std::out_of_range: row 9");
    EXPECT_EQ(describe(c.cause()), "std::out_of_range: row 9");
  }
  try {
    std::rethrow_exception(other->e);
  } catch (job_crashed const& c) {
    EXPECT_STREQ(c.what(), "job #2 crashed: int");
    EXPECT_EQ(describe(c.cause()), "int");
  }
  auto s = p.stats();
  EXPECT_EQ(s.crashed, 2u);
  EXPECT_EQ(s.restarts, 2u);
  expect_identity(s);
  expect_identity(stop_pool(p));
}

TEST_F(WorkerPool, KeyedCrashReportNamesTheKey) {
  auto p = start_pool(pspec(2));
  auto a = submit(p, job_key("user-7"), throw_job("bad row"));
  idle();
  EXPECT_EQ(describe(a->e),
            "backplane::job_crashed: job #1 (key user-7) crashed: std::runtime_error: bad row");
  auto crash = of_kind(supervisor_event_kind::child_terminated);
  ASSERT_EQ(crash.size(), 1u);
  EXPECT_NE(crash[0].reason.message.find("job #1 (key user-7)"), std::string::npos)
      << why(crash[0]);
  EXPECT_EQ(crash[0].reason.job, std::optional<std::uint64_t>(1));
  EXPECT_EQ(crash[0].reason.job_key, std::optional<std::string>("user-7"));
  // The JSON line carries them typed, for a pipeline to join with the job's answer.
  auto const line = boost::json::parse(format_json(crash[0])).as_object();
  EXPECT_EQ(line.at("job").to_number<std::uint64_t>(), 1u) << format_json(crash[0]);
  EXPECT_EQ(line.at("job_key").as_string(), "user-7");
  EXPECT_NE(format_text(crash[0]).find(" job=1 job_key=user-7"), std::string::npos)
      << format_text(crash[0]);
  expect_identity(stop_pool(p));
}

TEST_F(WorkerPool, BackpressureMakesSubmittersWaitLosingAndReorderingNothing) {
  auto p = start_pool(pspec(1, 2));
  auto g = make_gate();
  std::vector<int> order;
  auto ordered = [&](int i) -> job_t {
    order.push_back(i);
    co_return i;
  };
  auto first = submit(p, job_key(1u), gated(g));
  std::vector<std::shared_ptr<answer>> as;
  for (int i = 0; i < 10; ++i) as.push_back(submit(p, job_key(1u), ordered(i)));
  idle();
  auto s = p.stats();
  EXPECT_EQ(s.submitted, 11u);
  EXPECT_EQ(s.queued, 10u) << "2 in the queue, 8 submitters waiting for room";
  EXPECT_EQ(s.queue_high_water, 2u);
  expect_identity(s);
  // try_submit fails at once when full.
  auto t = std::make_shared<answer>();
  p.try_submit(value_job(0), record(t));
  idle();
  EXPECT_EQ(t->calls, 1);
  EXPECT_EQ(t->code(), pool_errc::queue_full);
  EXPECT_EQ(p.stats().rejected, 1u);
  g->open();
  idle();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  for (auto const& a : as) EXPECT_EQ(a->calls, 1);
  s = p.stats();
  EXPECT_EQ(s.completed, 11u);
  EXPECT_LE(s.queue_high_water, 2u);
  expect_identity(s);
  stop_pool(p);
}

TEST_F(WorkerPool, AFreeWorkerTakesUnkeyedJobsWhenTheQueueIsFullOfOthersKeyedJobs) {
  auto p = start_pool(pspec(2, 2));
  auto g = make_gate();
  auto held = submit(p, job_key(0u), gated(g));  // worker 0 busy
  auto k1 = submit(p, job_key(0u), value_job(1));
  auto k2 = submit(p, job_key(0u), value_job(2));  // the queue is full
  auto k3 = submit(p, job_key(0u), value_job(3));  // waits for room
  idle();
  auto free_job = submit(p, value_job(9));
  idle();
  EXPECT_EQ(free_job->calls, 1) << "worker 1 was free";
  EXPECT_EQ(k3->calls, 0);
  g->open();
  idle();
  EXPECT_EQ(*k1->r + *k2->r + *k3->r, 6);
  expect_identity(p.stats());
  stop_pool(p);
}

TEST_F(WorkerPool, KeyedJobsKeepTheirOrderThroughCrashes) {
  auto ps = pspec(3, 64);
  ps.max_restarts = 100;
  auto p = start_pool(ps);
  std::map<int, std::vector<int>> seen;
  auto job = [&](int key, int i, bool crash) -> job_t {
    seen[key].push_back(i);
    if (crash) throw std::runtime_error("crash");
    co_return i;
  };
  std::vector<std::shared_ptr<answer>> as;
  for (int i = 0; i < 30; ++i) {
    for (int key = 0; key < 4; ++key) {
      as.push_back(submit(p, job_key(static_cast<std::uint64_t>(key)), job(key, i, i % 7 == 3)));
    }
  }
  idle();
  for (auto const& [key, v] : seen) {
    EXPECT_EQ(v.size(), 30u) << "key " << key;
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end())) << "key " << key;
  }
  for (auto const& a : as) EXPECT_EQ(a->calls, 1);
  auto s = p.stats();
  EXPECT_EQ(s.crashed, 16u);
  EXPECT_EQ(s.completed, 104u);
  expect_identity(s);
  stop_pool(p);
}

TEST_F(WorkerPool, StopDrainsTheQueueThenCancelsAtTheDeadline) {
  auto p = start_pool(pspec(2, 8));
  device watcher;
  ASSERT_FALSE(watcher.link_line(p.line(), link_mode::monitor));
  std::vector<std::shared_ptr<gate>> gates;
  std::vector<std::shared_ptr<answer>> as;
  for (int i = 0; i < 6; ++i) {
    gates.push_back(make_gate(i));
    as.push_back(submit(p, gated(gates.back())));
  }
  idle();
  auto out = std::make_shared<std::optional<pool_stats>>();
  p.async_stop(5s, [out](boost::system::error_code, pool_stats s) { *out = s; });
  idle();
  auto late = submit(p, value_job(1));
  idle();
  EXPECT_EQ(late->code(), pool_errc::stopping);
  // Drained while before the deadline: the two running finish and two more run.
  gates[0]->open();
  gates[1]->open();
  idle();
  EXPECT_TRUE(gates[2]->started);
  EXPECT_TRUE(gates[3]->started);
  EXPECT_FALSE(*out);
  clock->advance(5s);
  idle();
  ASSERT_TRUE(*out);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(*as[i]->r, i);
  for (int i = 2; i < 6; ++i) {
    EXPECT_EQ(as[i]->calls, 1);
    EXPECT_EQ(as[i]->code(), asio::error::operation_aborted) << i;
  }
  EXPECT_EQ((*out)->completed, 2u);
  EXPECT_EQ((*out)->cancelled, 4u);
  EXPECT_EQ((*out)->workers_alive, 0u);
  expect_identity(**out);
  auto m = watcher.try_receive();
  ASSERT_TRUE(m);
  ASSERT_TRUE(as_disconnected(*m));
  EXPECT_FALSE(as_disconnected(*m)->fault) << "the pool's device disconnects cleanly";
}

TEST_F(WorkerPool, StopCompletesAtOnceWhenTheQueueDrains) {
  auto p = start_pool(pspec(2));
  auto a = submit(p, value_job(1));
  auto out = std::make_shared<std::optional<pool_stats>>();
  p.async_stop(1h, [out](boost::system::error_code, pool_stats s) { *out = s; });
  idle();
  ASSERT_TRUE(*out) << "nothing left to wait for";
  EXPECT_EQ(a->calls, 1);
  EXPECT_EQ((*out)->completed, 1u);
  expect_identity(**out);
}

TEST_F(WorkerPool, IntensityExceededFailsThePoolAndAnswersEveryJobOnce) {
  auto s = pspec(2, 16);
  s.max_restarts = 1;
  auto p = start_pool(s);
  device watcher;
  ASSERT_FALSE(watcher.link_line(p.line(), link_mode::monitor));
  auto g = make_gate();
  // Key 0 runs on worker 0, key 1 on worker 1: the gated job holds worker 0
  // with five jobs queued behind it while worker 1 crashes twice.
  auto running = submit(p, job_key(0u), gated(g));
  std::vector<std::shared_ptr<answer>> queued;
  for (int i = 0; i < 5; ++i) queued.push_back(submit(p, job_key(0u), value_job(i)));
  auto c1 = submit(p, job_key(1u), throw_job("one"));
  auto c2 = submit(p, job_key(1u), throw_job("two"));
  idle();
  EXPECT_EQ(c1->code(), pool_errc::job_crashed);
  EXPECT_EQ(c2->code(), pool_errc::job_crashed);
  for (auto const& a : queued) {
    EXPECT_EQ(a->calls, 1);
    EXPECT_EQ(a->code(), pool_errc::pool_failed);
  }
  EXPECT_EQ(running->calls, 1);
  EXPECT_EQ(running->code(), pool_errc::pool_failed);
  auto after = submit(p, value_job(1));
  idle();
  EXPECT_EQ(after->code(), pool_errc::pool_failed);
  auto st = p.stats();
  expect_identity(st);
  EXPECT_EQ(st.running + st.queued, 0u);
  auto m = watcher.try_receive();
  ASSERT_TRUE(m);
  ASSERT_TRUE(as_disconnected(*m));
  ASSERT_TRUE(as_disconnected(*m)->fault) << "its parent hears a fault";
  EXPECT_NE(describe(as_disconnected(*m)->cause).find("gave up"), std::string::npos);
  auto w = std::make_shared<std::optional<pool_stats>>();
  p.async_wait([w](boost::system::error_code, pool_stats x) { *w = x; });
  idle();
  EXPECT_TRUE(*w);
  EXPECT_EQ(of_kind(supervisor_event_kind::intensity_exceeded).size(), 1u);
}

TEST_F(WorkerPool, CancellingAQueuedJobRemovesIt) {
  auto p = start_pool(pspec(1));
  auto g = make_gate();
  auto first = submit(p, gated(g));
  asio::cancellation_signal sig;
  auto a = std::make_shared<answer>();
  p.async_submit(value_job(5), asio::bind_cancellation_slot(sig.slot(), record(a)));
  idle();
  sig.emit(asio::cancellation_type::terminal);
  idle();
  EXPECT_EQ(a->calls, 1);
  EXPECT_EQ(a->code(), asio::error::operation_aborted);
  EXPECT_EQ(p.stats().cancelled, 1u);
  expect_identity(p.stats());
  g->open();
  idle();
  EXPECT_EQ(first->calls, 1);
  EXPECT_EQ(a->calls, 1) << "answered once";
  expect_identity(stop_pool(p));
}

TEST_F(WorkerPool, CancellingARunningJobCancelsItAndTheWorkerGoesOn) {
  auto p = start_pool(pspec(1));
  auto g = make_gate();
  asio::cancellation_signal sig;
  auto a = std::make_shared<answer>();
  p.async_submit(gated(g), asio::bind_cancellation_slot(sig.slot(), record(a)));
  idle();
  ASSERT_TRUE(g->started);
  sig.emit(asio::cancellation_type::terminal);
  idle();
  EXPECT_EQ(a->calls, 1);
  EXPECT_EQ(a->code(), asio::error::operation_aborted);
  auto b = submit(p, value_job(9));
  idle();
  EXPECT_EQ(*b->r, 9) << "the worker runs the next job";
  auto s = p.stats();
  EXPECT_EQ(s.restarts, 0u);
  EXPECT_EQ(s.cancelled, 1u);
  expect_identity(s);
  stop_pool(p);
}

TEST_F(WorkerPool, CancellationRacingCompletionAnswersOnce) {
  using namespace boost::asio::experimental::awaitable_operators;
  auto p = start_pool(pspec(2));
  // Each round races a submit against another awaitable that completes
  // after 0 to 6 hops, while the job takes 0 to 5 hops: the loser's
  // cancellation reaches jobs while queued, while running and after they
  // answered. `||` waits for both operations, so a submit that was never
  // answered would hang the loop, and one answered twice would complete a
  // finished operation.
  auto o = test::start(ctx, [](worker_pool p) -> asio::awaitable<int> {
    auto hops = [](int n) -> job_t {
      for (int i = 0; i < n; ++i)
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      co_return n;
    };
    auto racer = [](int n) -> asio::awaitable<void> {
      for (int i = 0; i < n; ++i)
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    };
    int won = 0;
    for (int i = 0; i < 210; ++i) {
      auto r = co_await (p.async_submit(hops((i / 7) % 6), asio::as_tuple(asio::use_awaitable)) ||
                         racer(i % 7));
      won += r.index() == 0 ? 1 : 0;
    }
    co_return won;
  }(p));
  for (int i = 0; i < 1000 && !o->done; ++i) ctx.run_one();
  idle();
  ASSERT_TRUE(o->done) << "a submit was never answered";
  if (o->error) std::rethrow_exception(o->error);
  auto s = p.stats();
  EXPECT_EQ(s.submitted, 210u);
  EXPECT_EQ(s.completed + s.cancelled, 210u);
  EXPECT_GT(s.cancelled, 0u) << "the race never cancelled a job";
  EXPECT_GT(s.completed, 0u) << "the race never let a job finish";
  expect_identity(s);
  stop_pool(p);
}

TEST_F(WorkerPool, RetriesOnlyIdempotentJobsUnderThePolicy) {
  auto s = pspec(1);
  s.retry.max_attempts = 3;
  s.max_restarts = 10;
  auto p = start_pool(s);
  int tries = 0;
  auto a = std::make_shared<answer>();
  p.async_submit(idempotent([&]() -> job_t {
                   if (++tries < 3) throw std::runtime_error("flaky");
                   co_return 30;
                 }),
                 record(a));
  auto b = submit(p, throw_job("once"));  // not idempotent: answered crashed
  idle();
  EXPECT_EQ(tries, 3);
  EXPECT_EQ(a->calls, 1);
  EXPECT_FALSE(a->e);
  EXPECT_EQ(*a->r, 30);
  EXPECT_EQ(b->code(), pool_errc::job_crashed);
  auto st = p.stats();
  EXPECT_EQ(st.retried, 2u);
  EXPECT_EQ(st.crashed, 1u);
  EXPECT_EQ(st.restarts, 3u);
  expect_identity(st);
  stop_pool(p);
}

TEST_F(WorkerPool, GrowsUnderLoadAndShrinksWhenIdle) {
  auto s = pspec(1);
  s.max_workers = 3;
  s.idle_timeout = 2s;
  auto p = start_pool(s);
  EXPECT_EQ(p.stats().workers_alive, 1u);
  std::vector<std::shared_ptr<gate>> gates;
  for (int i = 0; i < 4; ++i) {
    gates.push_back(make_gate(i));
    submit(p, gated(gates.back()));
    idle();
  }
  EXPECT_EQ(p.stats().workers_alive, 3u) << "one more per job that found no free worker";
  for (auto& g : gates) {
    if (!g->opened && g->started) g->open();
  }
  idle();
  gates[3]->open();
  idle();
  EXPECT_EQ(p.stats().workers_alive, 3u);
  clock->advance(2s);
  idle();
  EXPECT_EQ(p.stats().workers_alive, 1u) << "the extra workers exit after idle_timeout";
  EXPECT_EQ(p.stats().restarts, 0u);
  expect_identity(p.stats());
  stop_pool(p);
}

TEST_F(WorkerPool, SitsInADeclaredTree) {
  std::optional<worker_pool> handle;
  auto root = spec("app");
  auto ps = pspec(2);
  ps.observer = nullptr;
  root.children.push_back(
      worker_pool::as_child("jobs", ps, [&](worker_pool p) { handle.emplace(std::move(p)); }));
  auto sup = supervisor_fixture::start(root);
  ASSERT_TRUE(handle);
  EXPECT_EQ(handle->path(), "app/jobs");
  auto a = submit(*handle, throw_job("nested"));
  idle();
  EXPECT_EQ(a->code(), pool_errc::job_crashed);
  auto crash = of_kind(supervisor_event_kind::child_terminated);
  ASSERT_EQ(crash.size(), 1u) << "the tree's observer hears the worker's crash";
  EXPECT_EQ(crash[0].supervisor, "app/jobs");
  auto e = stop(sup);
  EXPECT_FALSE(e.fault);
  EXPECT_EQ(handle->stats().workers_alive, 0u);
  expect_identity(handle->stats());
}

TEST_F(WorkerPool, BadInputIsRejectedSayingWhatToDo) {
  auto expect_message = [&](worker_pool_spec s, std::string const& part) {
    try {
      (void)worker_pool::start(ctx.get_executor(), std::move(s));
      ADD_FAILURE() << "accepted: " << part;
    } catch (std::invalid_argument const& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  auto s = pspec(0);
  expect_message(s, "at least one worker");
  s = pspec(2, 0);
  expect_message(s, "room for at least one job");
  s = pspec(4);
  s.max_workers = 2;
  expect_message(s, "make it at least `workers`");
  s = pspec(1);
  s.retry.max_attempts = 0;
  expect_message(s, "use 1 for no retries");
  // Submit after stop.
  auto p = start_pool(pspec(1));
  stop_pool(p);
  auto a = submit(p, value_job(1));
  auto t = std::make_shared<answer>();
  p.try_submit(value_job(1), record(t));
  idle();
  EXPECT_EQ(a->code(), pool_errc::stopping);
  EXPECT_EQ(t->code(), pool_errc::stopping);
  EXPECT_NE(make_error_code(pool_errc::stopping).message().find("start a new pool"),
            std::string::npos);
  expect_identity(p.stats());
}

job_t random_job(int kind) {
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  if (kind == 0) throw std::runtime_error("random crash");
  if (kind == 1) co_return make_error_code(boost::system::errc::io_error);
  co_return kind;
}

TEST(WorkerPoolTeardown, AContextDestroyedUnderARunningPoolTakesItAlong) {
  // No stop: the context goes first, with a job running, one queued and an
  // idle worker waiting. LeakSanitizer checks that nothing is left.
  auto logger =
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
  auto calls = std::make_shared<int>(0);
  {
    asio::io_context ctx;
    worker_pool_spec s;
    s.workers = 2;
    s.logger = logger;
    s.child_strands = false;
    s.clock = std::make_shared<manual_clock>();
    auto p = worker_pool::start(ctx.get_executor(), s);
    auto g = std::make_shared<gate>(ctx.get_executor());
    p.async_submit(job_key(0u), gated(g), [calls](std::exception_ptr, result_t) { ++*calls; });
    p.async_submit(job_key(0u), value_job(1), [calls](std::exception_ptr, result_t) { ++*calls; });
    run_until_idle(ctx);
    EXPECT_TRUE(g->started);
  }
  EXPECT_EQ(*calls, 0) << "a destroyed context runs no handler";
}

TEST(WorkerPoolThreads, AccountingHoldsUnderRandomCrashesOnFourThreads) {
  asio::io_context ctx(4);
  auto logger =
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
  worker_pool_spec s;
  s.workers = 4;
  s.queue_capacity = 64;
  s.max_restarts = 1'000'000;
  s.period = 1s;
  s.logger = logger;
  s.clock = std::make_shared<manual_clock>();
  s.retry.max_attempts = 2;
  auto p = worker_pool::start(asio::make_strand(ctx), s);
  constexpr int per_thread = 2'500;
  std::atomic<int> answers{0};
  std::atomic<int> twice{0};
  std::atomic<bool> broken{false};
  auto guard = asio::make_work_guard(ctx);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&] { ctx.run(); });
  std::vector<std::thread> submitters;
  for (int t = 0; t < 4; ++t) {
    submitters.emplace_back([&, t] {
      std::minstd_rand rng(static_cast<unsigned>(t + 1));
      for (int i = 0; i < per_thread; ++i) {
        int const kind = static_cast<int>(rng() % 10);
        auto once = std::make_shared<std::atomic<int>>(0);
        auto done = [&, once](std::exception_ptr, result_t) {
          if (once->fetch_add(1) != 0) ++twice;
          ++answers;
        };
        // Not a coroutine lambda: its frame would refer to a closure that dies
        // with this loop's iteration.
        auto job = [kind] { return random_job(kind); };
        if (i % 3 == 0) {
          p.async_submit(job_key(static_cast<std::uint64_t>(i % 5)), job(), done);
        } else if (i % 7 == 0) {
          p.async_submit(idempotent(job), done);
        } else {
          p.async_submit(job(), done);
        }
        if (i % 100 == 0) {
          auto st = p.stats();
          if (st.submitted !=
              st.completed + st.failed + st.crashed + st.cancelled + st.queued + st.running)
            broken = true;
        }
      }
    });
  }
  for (auto& t : submitters) t.join();
  while (answers.load() < 4 * per_thread) std::this_thread::yield();
  std::promise<pool_stats> stopped;
  p.async_stop(1s, [&](boost::system::error_code, pool_stats st) { stopped.set_value(st); });
  auto st = stopped.get_future().get();
  guard.reset();
  for (auto& t : threads) t.join();
  EXPECT_FALSE(broken.load()) << "a snapshot broke the identity";
  EXPECT_EQ(twice.load(), 0);
  EXPECT_EQ(st.submitted, 4u * per_thread);
  EXPECT_EQ(st.queued + st.running, 0u);
  EXPECT_GT(st.crashed, 0u);
  EXPECT_GT(st.failed, 0u);
  EXPECT_GT(st.restarts, 0u);
  expect_identity(st);
}

}  // namespace
}  // namespace backplane::test
