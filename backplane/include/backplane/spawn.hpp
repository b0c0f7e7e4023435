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

/// The spawned device, boxed so that `fn` can hold a reference to it while the
/// box moves into co_spawn's completion handler. (A wrapper coroutine owning
/// the device would cost a third coroutine frame per spawn, one more than
/// Asio's per-thread frame cache holds; an 8-byte malloc is cheaper.)
using device_box = std::unique_ptr<device>;

inline device_box box_device(device d) { return std::make_unique<device>(std::move(d)); }

/// Runs inside co_spawn's entry point, so a throw from `fn` itself is caught
/// there like one from its coroutine body.
template <class Fn>
struct spawn_entry {
  Fn fn;
  device* d;
  auto operator()() { return std::invoke(fn, *d); }
};

/// co_spawn's completion: a normal return disconnects cleanly, an escaped
/// exception with fault::error(); a device moved away by `fn` is left alone.
struct spawn_done {
  device_box box;
  template <class... Result>
  void operator()(std::exception_ptr e, Result&&...) {
    if (box->valid()) {
      if (e) {
        box->disconnect(fault::error(), e);
      } else {
        box->disconnect();
      }
    }
  }
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
  detail::device_box box = detail::box_device(std::move(d));
  device* p = box.get();
  boost::asio::co_spawn(std::forward<ExecutorOrContext>(ex),
                        detail::spawn_entry<fn_t>{std::forward<Fn>(fn), p},
                        detail::spawn_done{std::move(box)});
  return l;
}

}  // namespace backplane
