#pragma once
// watch: the first of a device's next message and its work's outcome.

#include <backplane/detail/config_check.hpp>
#include <backplane/detail/state.hpp>
#include <backplane/detail/wait_op.hpp>
#include <backplane/device.hpp>
#include <backplane/message.hpp>
#include <backplane/work.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/this_coro.hpp>

#include <cstdint>
#include <exception>
#include <optional>
#include <utility>

namespace backplane {

/// What `watch` saw first: the work completed (`value()`), the work threw
/// (`exception()`), or a message arrived (`msg()`).
template <class T>
class watched {
 public:
  using value_type = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
  enum class kind : std::uint8_t { completed, panic, message };

  [[nodiscard]] static watched completed(value_type v) {
    watched w(kind::completed);
    w.value_.emplace(std::move(v));
    return w;
  }
  [[nodiscard]] static watched panic(std::exception_ptr e) {
    watched w(kind::panic);
    w.exception_ = std::move(e);
    return w;
  }
  [[nodiscard]] static watched received(message m) {
    watched w(kind::message);
    w.message_.emplace(std::move(m));
    return w;
  }

  [[nodiscard]] kind what() const noexcept { return kind_; }
  [[nodiscard]] bool is_completed() const noexcept { return kind_ == kind::completed; }
  [[nodiscard]] bool is_panic() const noexcept { return kind_ == kind::panic; }
  [[nodiscard]] bool is_message() const noexcept { return kind_ == kind::message; }
  [[nodiscard]] value_type& value() { return *value_; }
  [[nodiscard]] std::exception_ptr const& exception() const noexcept { return exception_; }
  [[nodiscard]] message const& msg() const { return *message_; }

 private:
  explicit watched(kind k) noexcept : kind_(k) {}
  kind kind_;
  std::optional<value_type> value_;
  std::exception_ptr exception_;
  std::optional<message> message_;
};

namespace detail {

/// One non-blocking look: message first (the seed's bias), then the work.
template <class T, class Executor>
std::optional<watched<T>> poll_watch(state_header* s, work<T, Executor>& w) {
  if (auto m = try_receive(s)) return watched<T>::received(std::move(*m));
  if (w.done()) {
    if (w.exception()) return watched<T>::panic(w.exception());
    return watched<T>::completed(w.take_value());
  }
  return std::nullopt;
}

}  // namespace detail

/// Waits for the first of: the next message to `d`, `w` completing, `w`
/// throwing. When a message and the outcome are both ready, the message
/// wins. A message does not stop the work: watch the same `w` again to keep
/// waiting for it. Starts `w` (on this coroutine's executor) if it has not
/// started.
///
/// @par Per-Operation Cancellation
/// Cancelling the watching coroutine throws
/// `boost::system::system_error(operation_aborted)` from `watch`; the work
/// and the mailbox are left as they were, even when a message had already
/// woken the watch (as for `device::async_receive`). A watch that finds a
/// message or the outcome already there returns without suspending, so
/// nothing can cancel it: in `a || watch(...)` where `a` also finishes
/// without suspending, Asio's `||` reports `a` and drops the watch's result.
/// Compose with branches that suspend (a timer, a receive), or receive with
/// `device::async_receive`, whose completion always goes through the
/// executor.
template <class T, class Executor>
boost::asio::awaitable<watched<T>, Executor> watch(device& d, work<T, Executor>& w) {
  detail::state_header* s = d.state_for_library();
  w.start(co_await boost::asio::this_coro::executor, s);
  for (;;) {
    if (auto r = detail::poll_watch(s, w)) co_return std::move(*r);
    co_await detail::async_wait(s, detail::wake_on::message_or_work, boost::asio::deferred);
  }
}

}  // namespace backplane
