#pragma once
// part_manage and manage: run a work under a device, turning its outcome and
// its linked devices' faults into a crash or a success.

#include <backplane/crash.hpp>
#include <backplane/detail/config_check.hpp>
#include <backplane/detail/state.hpp>
#include <backplane/detail/wait_op.hpp>
#include <backplane/device.hpp>
#include <backplane/fault.hpp>
#include <backplane/message.hpp>
#include <backplane/returned_error.hpp>
#include <backplane/watch.hpp>
#include <backplane/work.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/system/result.hpp>
#include <boost/system/system_error.hpp>

#include <optional>
#include <type_traits>
#include <utility>

namespace backplane {

/// What `part_manage` gives back on success: the device, still connected
/// (its monitors were not told anything), and the work's value.
template <class T>
struct managed {
  backplane::device device;
  T value;
};
template <>
struct managed<void> {
  backplane::device device;
};

namespace detail {

template <bool Part, class T, class E>
using manage_result_t = boost::system::result<std::conditional_t<Part, managed<T>, T>, crash<E>>;

/// The one loop behind part_manage (Part) and manage (!Part): one frame.
template <bool Part, class T, class E, class Executor>
boost::asio::awaitable<manage_result_t<Part, T, E>, Executor> manage_loop(
    device d, boost::asio::awaitable<boost::system::result<T, E>, Executor> a) {
  using R = manage_result_t<Part, T, E>;
  state_header* s = d.state_for_library();
  work<boost::system::result<T, E>, Executor> w(std::move(a));
  w.start(co_await boost::asio::this_coro::executor, s);
  std::optional<crash<E>> crashed;
  bool cancelled = false;
  try {
    while (!crashed) {
      auto r = poll_watch(s, w);
      if (!r) {
        co_await async_wait(s, wake_on::message_or_work, boost::asio::deferred);
        continue;
      }
      if (r->is_completed()) {
        auto& res = r->value();
        if (res.has_value()) {
          if constexpr (!Part) d.disconnect();
          if constexpr (Part && std::is_void_v<T>) {
            co_return R(boost::system::in_place_value, managed<void>{std::move(d)});
          } else if constexpr (Part) {
            co_return R(boost::system::in_place_value, managed<T>{std::move(d), std::move(*res)});
          } else if constexpr (std::is_void_v<T>) {
            co_return R();
          } else {
            co_return R(boost::system::in_place_value, std::move(*res));
          }
        }
        // The cause says what the error was (described only if someone asks).
        d.disconnect(fault::error(), make_returned_error(res.error()));
        co_return R(boost::system::in_place_error, crash<E>::error(res.error()));
      }
      if (r->is_panic()) {
        d.disconnect(fault::error(), r->exception());
        co_return R(boost::system::in_place_error, crash<E>::panic(r->exception()));
      }
      if (auto const* gone = as_disconnected(r->msg())) {
        // A clean exit is forgotten (the link died with it); a fault spreads.
        if (gone->fault) crashed = crash<E>::cascade(gone->sender, *gone->fault);
      } else if (auto const* stop = as_shutdown(r->msg())) {
        crashed = crash<E>::power_off(stop->requester);
      }
    }
  } catch (boost::system::system_error const&) {
    // This coroutine itself was cancelled while waiting.
    crashed = crash<E>::panic(std::current_exception());
    cancelled = true;
  }
  if (cancelled) co_await boost::asio::this_coro::reset_cancellation_state();
  // The work is stopped and gone before anyone hears that we are. A
  // cancellation of this coroutine arriving meanwhile must not cut the wait
  // short (the work would run on unseen and the device be dropped): it is
  // absorbed here and stays pending for the caller's next wait.
  bool const throws = co_await boost::asio::this_coro::throw_if_cancelled();
  co_await boost::asio::this_coro::throw_if_cancelled(false);
  w.cancel();
  while (!w.done()) {
    try {
      co_await async_wait(s, wake_on::work, boost::asio::deferred);
    } catch (boost::system::system_error const&) {
      // Cancelled again: the work still has to finish.
    }
  }
  co_await boost::asio::this_coro::throw_if_cancelled(throws);
  d.disconnect(crashed->device_fault());
  co_return R(boost::system::in_place_error, std::move(*crashed));
}

}  // namespace detail

/// Runs `work` under `d` until it finishes or something linked goes wrong:
///
/// - the work returns a value: returns the device (still connected, nobody
///   told) and the value;
/// - the work returns an error: disconnects with `fault::error()` and a
///   `returned_error` describing it as the cause, returns `crash::error`;
/// - the work throws: disconnects with `fault::error()` and the exception as
///   the cause monitors receive, returns `crash::panic` holding it;
/// - a monitored device disconnects with a fault: disconnects with
///   `fault::cascade(that device)`, returns `crash::cascade`;
/// - a monitored device disconnects cleanly: forgotten, keeps going;
/// - a shutdown request arrives: disconnects cleanly, returns `crash::power_off`.
///
/// Whenever it returns a crash, the work has been cancelled and has finished
/// (its coroutine frame is destroyed) before the device disconnects. A work
/// that ignores cancellation therefore holds up the crash; that is the price
/// of never leaving it running unseen.
///
/// @par Per-Operation Cancellation
/// Cancelling the coroutine that awaits part_manage cancels the work, waits
/// for it to finish, disconnects with `fault::error()` and returns
/// `crash::panic` holding the operation_aborted error.
template <class T, class E, class Executor>
boost::asio::awaitable<boost::system::result<managed<T>, crash<E>>, Executor> part_manage(
    device d, boost::asio::awaitable<boost::system::result<T, E>, Executor> work) {
  return detail::manage_loop<true, T, E, Executor>(std::move(d), std::move(work));
}

/// `part_manage`, then on success a clean disconnect (monitors hear
/// `disconnected{id, nullopt}`) and the value.
template <class T, class E, class Executor>
boost::asio::awaitable<boost::system::result<T, crash<E>>, Executor> manage(
    device d, boost::asio::awaitable<boost::system::result<T, E>, Executor> work) {
  return detail::manage_loop<false, T, E, Executor>(std::move(d), std::move(work));
}

}  // namespace backplane
