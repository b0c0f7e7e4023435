// Child and supervisor specs: validation messages (OTP's check_childspecs and
// check_flags), and what the spec builders fill in.

#include "supervisor/fixture.hpp"

#include <cmath>
#include <limits>

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;

namespace {

/// Runs `fn`, which must throw std::invalid_argument whose message contains
/// every one of `parts`.
template <class Fn>
void expect_invalid(Fn&& fn, std::vector<std::string> const& parts) {
  try {
    fn();
    ADD_FAILURE() << "no std::invalid_argument thrown";
  } catch (std::invalid_argument const& e) {
    std::string const what = e.what();
    for (auto const& p : parts)
      EXPECT_NE(what.find(p), std::string::npos) << "'" << p << "' not in: " << what;
  }
}

child_spec good(std::string id = "w") {
  return worker(std::move(id), [](device& d) -> asio::awaitable<void> {
    co_await manage(std::move(d), forever_result());
  });
}

supervisor_spec good_sup() {
  supervisor_spec s;
  s.name = "sup";
  s.children = {good("a"), good("b")};
  return s;
}

}  // namespace

TEST(ChildSpec, ValidSpecPasses) { EXPECT_NO_THROW(validate(good())); }

TEST(ChildSpec, EmptyIdRejected) {
  auto c = good("");
  expect_invalid([&] { validate(c); }, {"id is empty"});
}

TEST(ChildSpec, MissingStartRejected) {
  child_spec c;
  c.id = "nostart";
  expect_invalid([&] { validate(c); }, {"'nostart'", "no start function"});
}

TEST(ChildSpec, NegativeTimeoutRejected) {
  auto c = good("slow");
  c.shutdown = shutdown_policy::timeout(-1ms);
  expect_invalid([&] { validate(c); }, {"'slow'", "negative shutdown timeout"});
}

TEST(ChildSpec, ZeroTimeoutAccepted) {
  auto c = good();
  c.shutdown = shutdown_policy::timeout(0ms);
  EXPECT_NO_THROW(validate(c));
}

TEST(ChildSpec, BadBackoffRejected) {
  auto with = [](auto tweak) {
    auto c = good("b");
    c.backoff = backoff_policy{};
    tweak(*c.backoff);
    return c;
  };
  struct bad_case {
    std::function<void(backoff_policy&)> tweak;
    std::string says;
  };
  std::vector<bad_case> cases = {
      {[](backoff_policy& b) { b.initial = -1ms; }, "0 <= initial <= max"},
      {[](backoff_policy& b) { b.max = b.initial - 1ms; }, "0 <= initial <= max"},
      {[](backoff_policy& b) { b.multiplier = 0.5; }, "multiplier"},
      {[](backoff_policy& b) { b.multiplier = std::nan(""); }, "multiplier"},
      {[](backoff_policy& b) { b.multiplier = std::numeric_limits<double>::infinity(); },
       "multiplier"},
      {[](backoff_policy& b) { b.jitter = 1.5; }, "jitter"},
      {[](backoff_policy& b) { b.jitter = -0.1; }, "jitter"},
      {[](backoff_policy& b) { b.jitter = std::nan(""); }, "jitter"},
      {[](backoff_policy& b) { b.reset_after = -1s; }, "reset_after"},
  };
  for (auto const& bc : cases) {
    auto c = with(bc.tweak);
    SCOPED_TRACE(bc.says);
    expect_invalid([&] { validate(c); }, {"'b'", "backoff", bc.says});
  }
}

TEST(ChildSpec, GoodBackoffAccepted) {
  auto c = good();
  c.backoff = backoff_policy{
      .initial = 0ms, .max = 0ms, .multiplier = 1.0, .jitter = 0.0, .reset_after = 0ms};
  EXPECT_NO_THROW(validate(c));
  c.backoff = backoff_policy{};
  EXPECT_NO_THROW(validate(c));
}

TEST(SupervisorSpec, ValidSpecPasses) { EXPECT_NO_THROW(validate(good_sup())); }

TEST(SupervisorSpec, DuplicateIdRejected) {
  auto s = good_sup();
  s.children.push_back(good("a"));
  expect_invalid([&] { validate(s); }, {"'sup'", "'a'", "twice"});
}

TEST(SupervisorSpec, EmptyChildIdRejected) {
  auto s = good_sup();
  s.children.push_back(good(""));
  expect_invalid([&] { validate(s); }, {"id is empty"});
}

TEST(SupervisorSpec, ChildWithoutStartRejected) {
  auto s = good_sup();
  child_spec c;
  c.id = "c";
  s.children.push_back(c);
  expect_invalid([&] { validate(s); }, {"'c'", "no start function"});
}

TEST(SupervisorSpec, BadNameRejected) {
  auto s = good_sup();
  s.name = "";
  expect_invalid([&] { validate(s); }, {"name"});
  s.name = "a/b";
  expect_invalid([&] { validate(s); }, {"name", "'/'"});
}

TEST(SupervisorSpec, ZeroPeriodWithRestartsRejected) {
  auto s = good_sup();
  s.max_restarts = 3;
  s.period = 0s;
  expect_invalid([&] { validate(s); }, {"'sup'", "period", "positive"});
}

TEST(SupervisorSpec, NegativePeriodRejected) {
  auto s = good_sup();
  s.period = -1s;
  expect_invalid([&] { validate(s); }, {"period", "positive"});
  s.max_restarts = 0;
  expect_invalid([&] { validate(s); }, {"period", "positive"});
}

TEST(SupervisorSpec, IntensityZeroInPeriodZeroAccepted) {
  // OTP's "never restart" without a meaningful period: the first restartable
  // exit ends the supervisor whatever the period.
  auto s = good_sup();
  s.max_restarts = 0;
  s.period = 0s;
  EXPECT_NO_THROW(validate(s));
}

TEST(SupervisorSpec, StartThrowsOnInvalidSpec) {
  asio::io_context ctx;
  auto s = good_sup();
  s.children.push_back(good("a"));
  expect_invalid([&] { (void)supervisor::start(ctx.get_executor(), s); }, {"twice"});
}

TEST(SupervisorSpec, SupervisorChildValidatesNestedSpec) {
  auto s = good_sup();
  s.period = 0s;
  expect_invalid([&] { (void)supervisor_child("nested", s); }, {"period"});
}

TEST(SupervisorSpec, SupervisorChildDefaults) {
  auto c = supervisor_child("nested", good_sup());
  EXPECT_EQ(c.id, "nested");
  EXPECT_EQ(c.kind, child_kind::supervisor);
  EXPECT_EQ(c.restart, restart_type::permanent);
  EXPECT_TRUE(c.shutdown.is_infinity());
  EXPECT_TRUE(c.start);
  EXPECT_NO_THROW(validate(c));
}

TEST(SupervisorSpec, Defaults) {
  supervisor_spec s;
  EXPECT_EQ(s.strategy, restart_strategy::one_for_one);
  EXPECT_EQ(s.max_restarts, 3u);
  EXPECT_EQ(s.period, 5s);
  EXPECT_FALSE(s.format);
  EXPECT_FALSE(s.child_strands);
}

TEST(WorkerSpec, FillsFields) {
  auto c = worker(
      "w", [](device&) -> asio::awaitable<void> { co_return; }, restart_type::transient);
  EXPECT_EQ(c.id, "w");
  EXPECT_EQ(c.restart, restart_type::transient);
  EXPECT_EQ(c.kind, child_kind::worker);
  EXPECT_TRUE(c.shutdown.is_timeout());
  EXPECT_EQ(c.shutdown.time(), 5s);
  EXPECT_FALSE(c.backoff);
  EXPECT_TRUE(c.start);
}

TEST(ShutdownPolicy, Kinds) {
  EXPECT_TRUE(shutdown_policy::brutal().is_brutal());
  EXPECT_TRUE(shutdown_policy::infinity().is_infinity());
  auto t = shutdown_policy::timeout(250ms);
  EXPECT_TRUE(t.is_timeout());
  EXPECT_FALSE(t.is_brutal());
  EXPECT_EQ(t.time(), 250ms);
}

using StartForms = supervisor_fixture;

TEST_F(StartForms, EveryStartFunctionShapeWorks) {
  // fn(device&) -> awaitable, fn(child_context&) -> awaitable (a coroutine
  // that keeps using its context), fn(device&) -> start_result, and
  // fn(child_context&) -> start_result (including a start_error).
  std::vector<std::string> seen;
  auto s = spec();
  s.children.push_back(worker("dev", [&](device& d) -> asio::awaitable<void> {
    seen.push_back("dev");
    co_await manage(std::move(d), forever_result());
  }));
  s.children.push_back(worker("ctx", [&](child_context& c) -> asio::awaitable<void> {
    co_await asio::post(c.executor, asio::use_awaitable);  // the context outlives the start call
    seen.push_back(fmt::format("ctx {} {} {}", c.supervisor, c.id, c.incarnation));
    co_await manage(std::move(c.device), forever_result());
  }));
  s.children.push_back(worker("dev_result", [&](device& d) -> start_result {
    return [](device& d, std::vector<std::string>& seen) -> asio::awaitable<void> {
      seen.push_back("dev_result");
      co_await manage(std::move(d), forever_result());
    }(d, seen);
  }));
  auto sup = start(std::move(s));
  EXPECT_EQ(seen, (strings{"dev", "dev_result", "ctx sup ctx 1"}));
  int tries = 0;
  auto refused = start_child(sup, worker("ctx_error", [&](child_context&) -> start_result {
                               ++tries;
                               return start_error{"not today"};
                             }));
  EXPECT_EQ(refused.ec, supervisor_errc::start_failed);
  EXPECT_EQ(tries, 1);
  auto errs = of_kind(supervisor_event_kind::start_error);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(why(errs[0]), "not today");
  EXPECT_FALSE(stop(sup).fault);
}

TEST_F(StartForms, StartChildValidatesBeforePosting) {
  auto sup = start(spec());
  child_spec c;
  c.id = "nostart";
  expect_invalid([&] { sup.async_start_child(c, [](auto, auto) {}); }, {"no start function"});
  stop(sup);
}

namespace {

/// A coroutine that starts an invalid child with use_awaitable, whose
/// initiation runs only once the coroutine has suspended.
asio::awaitable<void> start_invalid(supervisor sup, bool* caught) {
  child_spec c;
  c.id = "nostart";
  try {
    (void)co_await sup.async_start_child(c, asio::use_awaitable);
  } catch (std::invalid_argument const&) {
    *caught = true;
  }
}

TEST_F(StartForms, StartChildValidatesAtTheCallWhateverTheToken) {
  // Thrown where the call is made, never out of io_context::run().
  auto sup = start(spec());
  bool caught = false;
  asio::co_spawn(ctx, start_invalid(sup, &caught), asio::detached);
  EXPECT_NO_THROW(idle());
  EXPECT_TRUE(caught);
  child_spec c;
  c.id = "nostart";
  EXPECT_THROW((void)sup.async_start_child(c, asio::deferred), std::invalid_argument);
  EXPECT_FALSE(stop(sup).fault);
}

TEST_F(StartForms, AMoveOnlyStartFunctionIsCalledOncePerIncarnation) {
  // It captures a unique_ptr: std::function could not hold it. The spec
  // stays copyable (copies share a move-only start function).
  int calls = 0;
  auto c = kids.spec("m");
  c.start = [inner = std::move(c.start), token = std::make_unique<int>(7),
             &calls](child_context& ctx) -> start_result {
    ++calls;
    EXPECT_EQ(*token, 7);
    return inner(ctx);
  };
  auto s = spec();
  s.children = {c};  // copied from the initializer list
  auto sup = start(std::move(s));
  EXPECT_EQ(calls, 1);
  kids.end("m", ending::error);
  idle();
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(kids.running("m"));
  EXPECT_FALSE(stop(sup).fault);
}

TEST_F(StartForms, ACopyableStartFunctionIsCopiedWithItsSpec) {
  // As std::function did: each copy of the spec has its own state.
  auto c = worker("x", [n = 0](device&) mutable -> start_result {
    return start_error{fmt::format("call {}", ++n)};
  });
  child_spec copy = c;
  device d;
  std::string const path = "sup";
  std::string const id = "x";
  child_context cc{d, path, id, 1, asio::any_io_executor(ctx.get_executor()), nullptr, nullptr};
  EXPECT_EQ(c.start(cc).error().reason, "call 1");
  EXPECT_EQ(copy.start(cc).error().reason, "call 1");
  EXPECT_EQ(c.start(cc).error().reason, "call 2");
}

}  // namespace
