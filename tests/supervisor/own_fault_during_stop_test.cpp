// A child that faults on its own while it is being stopped (issue 8): its
// run disconnects its device with fault::error() and then keeps awaiting.
// OTP reports such a child (shutdown_error with its reason) unless the kill
// reached it first; so must we, for every shutdown policy and wherever in the
// stop's hops the fault lands. The interleavings are swept one handler at a
// time on one thread, then raced on four.

#include "supervisor/fixture.hpp"

#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_future.hpp>

#include <future>
#include <mutex>
#include <thread>

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;

namespace {

/// One incarnation of the child, as the test sees it.
struct faulter_state {
  std::optional<asio::steady_timer> trigger;  // cancelled by the test: fault now
  std::optional<asio::steady_timer> after;    // what it awaits once faulted
  asio::any_io_executor ex;                   // the child's executor
  bool faulted = false;
  /// The supervisor's kill reached the run before it faulted (cancellation
  /// was already requested when it disconnected).
  bool killed_first = false;
};

/// Waits for the test's trigger (or a kill), disconnects its device with a
/// fault of its own, then keeps awaiting until cancelled.
child_spec faulter(std::shared_ptr<faulter_state> st, shutdown_policy pol) {
  auto c = worker("x", [st](child_context& ctx) -> asio::awaitable<void> {
    st->ex = ctx.executor;
    st->trigger.emplace(ctx.executor, asio::steady_timer::time_point::max());
    st->after.emplace(ctx.executor, asio::steady_timer::time_point::max());
    return [](device& d, std::shared_ptr<faulter_state> st) -> asio::awaitable<void> {
      (void)co_await st->trigger->async_wait(asio::as_tuple(asio::use_awaitable));
      auto cs = co_await asio::this_coro::cancellation_state;
      st->killed_first = cs.cancelled() != asio::cancellation_type::none;
      d.disconnect(fault::error(), std::make_exception_ptr(std::runtime_error("own fault")));
      st->faulted = true;
      // Until cancelled: by the stop, or by the test when the supervisor,
      // having heard of the fault first, no longer knows the run.
      co_await st->after->async_wait(asio::use_awaitable);
    }(ctx.device, st);
  });
  c.shutdown = pol;
  c.restart = restart_type::temporary;  // one incarnation
  return c;
}

enum class policy { brutal, timeout, infinity };
enum class stop_by { terminate_child, stop_supervisor };

shutdown_policy policy_of(policy p) {
  switch (p) {
    case policy::brutal: return shutdown_policy::brutal();
    case policy::timeout: return shutdown_policy::timeout(std::chrono::seconds(1));
    case policy::infinity: return shutdown_policy::infinity();
  }
  return shutdown_policy::brutal();
}

/// The rule under test, for one stop of one faulting (temporary) child: its
/// own fault is reported once with its reason, also when the kill came first
/// (OTP's kill cannot be ignored; ours can, and what a child does after it
/// is its own: supervisor.hpp, "A fault of its own after the kill"). Landing
/// while the stop runs, it is a shutdown_error; landing before the stop
/// began, the supervisor decides it as any exit (child_terminated).
void expect_reported(std::vector<supervisor_event> const& events, faulter_state const& st,
                     std::string const& where) {
  int own = 0;
  int other = 0;
  for (auto const& e : events) {
    if (e.child != "x") continue;
    if ((e.event == supervisor_event_kind::shutdown_error ||
         e.event == supervisor_event_kind::child_terminated) &&
        to_string(e.reason) == "exception: std::runtime_error: own fault") {
      ++own;
    } else {
      ++other;
    }
  }
  EXPECT_EQ(other, 0) << where << [&] {
    std::string all;
    for (auto const& e : events)
      all += fmt::format(" [{} {} {}]", e.child, to_string(e.event), to_string(e.reason));
    return all;
  }();
  // Also when the kill reached it first: a fault of its own after the kill
  // (here with a cause that is not the cancellation) is its own end.
  EXPECT_EQ(own, st.faulted ? 1 : 0) << where << ": the child's own fault went unreported";
}

class OwnFaultDuringStop : public supervisor_fixture,
                           public ::testing::WithParamInterface<std::tuple<policy, stop_by>> {};

TEST_P(OwnFaultDuringStop, IsReportedWhereverItLands) {
  auto const [pol, how] = GetParam();
  // `steps` handlers of the stop run before the child faults: every point
  // of the stop's hops, from before its first one to after its last.
  for (int steps = -1; steps < 12; ++steps) {
    asio::io_context io;
    std::vector<supervisor_event> seen;
    auto st = std::make_shared<faulter_state>();
    supervisor_spec s = spec();
    s.observer = [&seen](supervisor_event const& e) { seen.push_back(e); };
    s.children = {faulter(st, policy_of(pol))};
    auto sup = supervisor::start(io.get_executor(), std::move(s));
    ASSERT_TRUE(sup);
    run_until_idle(io);
    if (steps < 0) st->trigger->cancel();  // the fault first, then the stop
    bool answered = false;
    if (how == stop_by::terminate_child) {
      sup->async_terminate_child("x", [&](boost::system::error_code ec) {
        // not_found: the fault came first and the temporary child was dropped.
        EXPECT_TRUE(!ec || ec == supervisor_errc::not_found) << ec.message();
        answered = true;
      });
    } else {
      sup->async_stop([&](boost::system::error_code, supervisor_exit) { answered = true; });
    }
    for (int i = 0; i < steps; ++i) (void)io.poll_one();
    if (steps >= 0) st->trigger->cancel();
    run_until_idle(io);
    std::string const where = fmt::format("fault after {} handlers of the stop", steps);
    EXPECT_TRUE(answered) << where;
    expect_reported(seen, *st, where);
    if (how == stop_by::terminate_child) {
      (void)sup->async_stop(asio::detached);
      run_until_idle(io);
    }
  }
}

std::string param_name(::testing::TestParamInfo<std::tuple<policy, stop_by>> const& info) {
  auto const [pol, how] = info.param;
  std::string name = pol == policy::brutal    ? "Brutal"
                     : pol == policy::timeout ? "Timeout"
                                              : "Infinity";
  return name + (how == stop_by::terminate_child ? "TerminateChild" : "Stop");
}

INSTANTIATE_TEST_SUITE_P(
    Policies, OwnFaultDuringStop,
    ::testing::Combine(::testing::Values(policy::brutal, policy::timeout, policy::infinity),
                       ::testing::Values(stop_by::terminate_child, stop_by::stop_supervisor)),
    param_name);

TEST(OwnFaultDuringStopThreads, IsReportedWhateverTheRace) {
  // The fault and a brutal stop raced on a four-thread context, the child on
  // its own strand: whichever wins, the outcome follows the rule above.
  for (int round = 0; round < 200; ++round) {
    asio::io_context io(4);
    auto work = asio::make_work_guard(io);
    std::mutex mu;
    std::vector<supervisor_event> seen;
    auto st = std::make_shared<faulter_state>();
    supervisor_spec s;
    s.name = "sup";
    s.logger =
        std::make_shared<spdlog::logger>("t", std::make_shared<spdlog::sinks::null_sink_mt>());
    s.observer = [&](supervisor_event const& e) {
      std::lock_guard lock(mu);
      seen.push_back(e);
    };
    s.child_strands = true;
    s.children = {faulter(st, shutdown_policy::brutal())};
    auto sup = supervisor::start(asio::make_strand(io), std::move(s));
    ASSERT_TRUE(sup);
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) threads.emplace_back([&io] { io.run(); });
    // The child has started once the supervisor answers a call after its start.
    (void)sup->async_count_children(asio::use_future).get();
    auto const ex = st->ex;
    std::promise<boost::system::error_code> done;
    sup->async_terminate_child("x", [&done](boost::system::error_code ec) { done.set_value(ec); });
    asio::post(ex, [st] { st->trigger->cancel(); });
    auto const ec = done.get_future().get();
    EXPECT_TRUE(!ec || ec == supervisor_errc::not_found) << ec.message();
    sup->async_stop(asio::use_future).get();
    asio::post(ex, [st] { st->after->cancel(); });
    work.reset();
    for (auto& t : threads) t.join();
    std::lock_guard lock(mu);
    expect_reported(seen, *st, fmt::format("round {}", round));
  }
}

}  // namespace
