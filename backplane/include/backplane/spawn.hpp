#pragma once
// spawn: start a coroutine that owns a device.

#include <backplane/detail/config_check.hpp>
#include <backplane/device.hpp>
#include <backplane/fault.hpp>
#include <backplane/line.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace backplane {

namespace detail {

template <class Awaitable>
struct awaitable_executor;
template <class T, class Executor>
struct awaitable_executor<boost::asio::awaitable<T, Executor>> {
  using type = Executor;
};

/// `fn(d)`, then the device's end, in the coroutine itself. Disconnecting here rather than in
/// co_spawn's completion handler matters when `fn` returns without ever suspending: co_spawn
/// then posts once more before it completes, and the monitors would only hear of the end
/// after that extra pass through the queue (with a reactor on the context, one more
/// epoll_wait per spawn). A throw from `fn` itself, or from its coroutine, ends here too.
template <class Fn>
auto run_then_disconnect(Fn& fn, device& d) -> boost::asio::awaitable<
    void, typename awaitable_executor<std::invoke_result_t<Fn&, device&>>::type> {
  std::exception_ptr thrown;
  try {
    (void)co_await std::invoke(fn, d);
  } catch (...) {
    thrown = std::current_exception();
  }
  if (d.valid()) {
    if (thrown) {
      d.disconnect(fault::error(), thrown);
    } else {
      d.disconnect();
    }
  }
}

/// The function co_spawn runs: co_spawn keeps it in its entry point's frame for the
/// coroutine's whole life, so the device lives there too, at an address `fn` may keep.
template <class Fn>
struct spawn_entry {
  Fn fn;
  device d;
  auto operator()() { return run_then_disconnect(fn, d); }
};

/// co_spawn's completion. The device has ended in run_then_disconnect, which catches
/// everything; should the coroutine not even start (no memory for its frame), the device
/// is destroyed with the entry point and its monitors hear fault::drop.
struct spawn_done {
  void operator()(std::exception_ptr) const noexcept {}
};

}  // namespace detail

/// Starts `fn(device&)` as a coroutine on `ex` (an executor or an execution
/// context, as for co_spawn). The coroutine owns `d` for its whole life:
///
/// - `fn` returns and the device is still connected: clean disconnect;
/// - an exception escapes `fn`: disconnect with `fault::error()`, the
///   exception as the cause monitors receive;
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
  line l = d.line();
  boost::asio::co_spawn(std::forward<ExecutorOrContext>(ex),
                        detail::spawn_entry<fn_t>{std::forward<Fn>(fn), std::move(d)},
                        detail::spawn_done{});
  return l;
}

}  // namespace backplane
