#pragma once
// Children for service tests: each one ends (or refuses to end) the way a row of the exit
// status table needs, and can raise a signal at a chosen moment of its life.

#include "support/run_until_idle.hpp"

#include <backplane/backplane.hpp>
#include <backplane/supervisor.hpp>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <csignal>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace backplane::test {

using namespace std::chrono_literals;

inline std::shared_ptr<spdlog::logger> muted_logger() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

/// A root spec with a muted logger and the given clock (real when null).
inline supervisor_spec root_spec(std::shared_ptr<supervisor_clock> clock = nullptr) {
  supervisor_spec s;
  s.name = "app";
  s.clock = std::move(clock);
  s.logger = muted_logger();
  s.child_strands = false;
  return s;
}

using work_result = boost::system::result<void, int>;

/// Waits until cancelled; false when the wait ended by cancellation (the only way it ends).
inline boost::asio::awaitable<bool> wait_for_ever() {
  auto [ec] = co_await boost::asio::steady_timer(co_await boost::asio::this_coro::executor,
                                                 boost::asio::steady_timer::time_point::max())
                  .async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  co_return !ec;
}

// The lives below are free coroutines taking their arguments by value, so that their frames
// never point into a start function's captures.

inline boost::asio::awaitable<work_result> serve(std::string id, std::vector<std::string>* log) {
  if (log) log->push_back("start " + id);
  (void)co_await wait_for_ever();
  if (log) log->push_back("stop " + id);
  co_return work_result();
}

inline boost::asio::awaitable<work_result> raise_then_serve(int sig) {
  std::raise(sig);
  (void)co_await wait_for_ever();
  co_return work_result();
}

/// The timers wedged children wait on after ignoring their cancellation. A test whose service
/// gave up on a wedged tree (forced, deadline_exceeded) releases them at its end, so the tree
/// ends and its frames are freed: a supervisor waiting for a child (`infinity`) is parked in its
/// own device's mailbox, which a destroyed io_context cannot reach (LSan would report it).
inline std::vector<std::weak_ptr<boost::asio::steady_timer>>& wedged() {
  static std::vector<std::weak_ptr<boost::asio::steady_timer>> timers;
  return timers;
}
/// Ends every wedged child's wait (single-threaded contexts: the tests' own).
inline void release_wedged() {
  for (auto& w : wedged()) {
    if (auto t = w.lock()) t->cancel();
  }
  wedged().clear();
}

inline boost::asio::awaitable<work_result> ignore_stop(int on_cancel) {
  (void)co_await wait_for_ever();
  if (on_cancel != 0) std::raise(on_cancel);
  // Cancellation is terminal for this coroutine: without the reset the next wait would fail
  // at once. The new timer is cancelled by nothing the library does: what a wedged child looks
  // like (only release_wedged ends it).
  co_await boost::asio::this_coro::reset_cancellation_state();
  auto wedge = std::make_shared<boost::asio::steady_timer>(
      co_await boost::asio::this_coro::executor, boost::asio::steady_timer::time_point::max());
  wedged().push_back(wedge);
  (void)co_await wedge->async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  co_return work_result();
}

inline boost::asio::awaitable<work_result> crash_soon() {
  co_await boost::asio::post(co_await boost::asio::this_coro::executor, boost::asio::use_awaitable);
  throw std::runtime_error("boom");
}

/// Serves until the supervisor cancels it (a managed work), logging "start id" and "stop id".
inline child_spec server(std::string id, std::vector<std::string>* log = nullptr) {
  return worker(id, [id, log](device&) { return serve(id, log); });
}

/// Raises `sig` once it runs (after its start), then serves until cancelled.
inline child_spec raiser(std::string id, int sig = SIGTERM) {
  return worker(std::move(id), [sig](device&) { return raise_then_serve(sig); });
}

/// Ignores the shutdown request (its shutdown policy is `infinity`, so the supervisor waits for
/// it for ever): when cancelled it raises `on_cancel` (0: nothing) and goes on waiting.
inline child_spec stubborn(std::string id, int on_cancel = 0) {
  auto spec = worker(std::move(id), [on_cancel](device&) { return ignore_stop(on_cancel); });
  spec.shutdown = shutdown_policy::infinity();
  return spec;
}

/// Fails after running: a permanent child that throws.
inline child_spec crasher(std::string id) {
  return worker(std::move(id), [](device&) { return crash_soon(); });
}

/// A start function that fails by value.
inline child_spec unstartable(std::string id) {
  child_spec s;
  s.id = std::move(id);
  s.start = [](child_context&) -> start_result { return start_error{"database unreachable"}; };
  return s;
}

}  // namespace backplane::test
