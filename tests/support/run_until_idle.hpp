#pragma once
// Test fixtures: drive an io_context by hand, and run a coroutine whose
// outcome the test reads afterwards. Nothing here sleeps or measures time.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace backplane::test {

/// Runs handlers until none is ready, without blocking. A coroutine waiting
/// on a device is outstanding work, so `run()` would block for ever; this
/// returns once everything that can run has run. Leaves the context ready to
/// be driven again. Returns the number of handlers run.
inline std::size_t run_until_idle(boost::asio::io_context& ctx) {
  std::size_t total = 0;
  for (;;) {
    std::size_t n = ctx.poll();
    if (n == 0) break;
    total += n;
  }
  if (ctx.stopped()) ctx.restart();
  return total;
}

/// What a coroutine started with `start` produced, once `done`.
template <class T>
struct outcome {
  using value_type = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
  bool done = false;
  std::optional<value_type> value;
  std::exception_ptr error;
};

namespace detail {
template <class T>
boost::asio::awaitable<void> capture(boost::asio::awaitable<T> a, std::shared_ptr<outcome<T>> o) {
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(a);
      o->value.emplace();
    } else {
      o->value.emplace(co_await std::move(a));
    }
  } catch (...) {
    o->error = std::current_exception();
  }
  o->done = true;
}
}  // namespace detail

/// co_spawns `a` on `ex` and records its value or exception. Unlike a
/// co_spawn completion handler this needs no default-constructible T.
template <class T, class ExecutorOrContext>
std::shared_ptr<outcome<T>> start(ExecutorOrContext&& ex, boost::asio::awaitable<T> a) {
  auto o = std::make_shared<outcome<T>>();
  boost::asio::co_spawn(std::forward<ExecutorOrContext>(ex), detail::capture<T>(std::move(a), o),
                        boost::asio::detached);
  return o;
}

/// Waits until cancelled (then throws operation_aborted, as any Asio wait
/// does). A timer rather than a device, so that it exercises a foreign
/// operation's cancellation.
inline boost::asio::awaitable<void> forever() {
  boost::asio::steady_timer t(co_await boost::asio::this_coro::executor,
                              boost::asio::steady_timer::time_point::max());
  co_await t.async_wait(boost::asio::use_awaitable);
}

}  // namespace backplane::test
