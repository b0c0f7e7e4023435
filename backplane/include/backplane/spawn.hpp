#pragma once
// spawn: start a coroutine that owns a device.

#include <backplane/device.hpp>
#include <backplane/fault.hpp>
#include <backplane/line.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

namespace backplane {

namespace detail {

template <class Fn, class Executor>
boost::asio::awaitable<void, Executor> spawn_body(device d, Fn fn) {
  bool threw = false;
  try {
    co_await std::invoke(fn, d);
  } catch (...) {
    threw = true;
  }
  if (d.valid()) d.disconnect(threw ? std::optional<fault>(fault::error()) : std::nullopt);
}

}  // namespace detail

/// Starts `fn(device&)` as a coroutine on `ex` (an executor or an execution
/// context, as for co_spawn). The coroutine owns `d` for its whole life:
///
/// - `fn` returns and the device is still connected: clean disconnect;
/// - an exception escapes `fn`: disconnect with `fault::error()`;
/// - `fn` moved the device away (into `manage`, say): that owner decides.
///
/// Returns a line to the device. `fn` must be callable as `fn(device&)` and
/// return an awaitable; it is stored in the coroutine, so captures live as
/// long as it runs. On a multi-threaded context pass a strand: the device and
/// any work it watches then never run at once.
///
/// Thread-safety: may be called from any thread.
template <class ExecutorOrContext, class Fn>
line spawn(ExecutorOrContext&& ex, device d, Fn&& fn) {
  using fn_t = std::decay_t<Fn>;
  static_assert(std::is_invocable_v<fn_t&, device&>,
                "backplane::spawn: fn must be callable as fn(backplane::device&) and return "
                "a boost::asio::awaitable");
  using awaitable_t = std::invoke_result_t<fn_t&, device&>;
  using executor_t = typename awaitable_t::executor_type;
  line l = d.line();
  boost::asio::co_spawn(std::forward<ExecutorOrContext>(ex),
                        detail::spawn_body<fn_t, executor_t>(std::move(d), std::forward<Fn>(fn)),
                        boost::asio::detached);
  return l;
}

}  // namespace backplane
