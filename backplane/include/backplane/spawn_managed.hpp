#pragma once
// spawn_managed: manage's rules for a work, in one coroutine (the work's own)
// and a callback receive on its device.

#include <backplane/crash.hpp>
#include <backplane/detail/config_check.hpp>
#include <backplane/detail/managed_run.hpp>
#include <backplane/device.hpp>
#include <backplane/line.hpp>
#include <backplane/returned_error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/recycling_allocator.hpp>
#include <boost/asio/system_executor.hpp>
#include <boost/system/result.hpp>

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace backplane {

/// A handle to a work started with `spawn_managed`: its device's line, and a
/// way to stop it without a message's trip through the mailbox. Copyable; an
/// empty handle (default-constructed) may only be destroyed or assigned. A
/// handle does not keep the run alive (so the run's end handler may hold
/// the handle's owner without a cycle): once the run is over, `request_stop`
/// does nothing.
class managed_work {
 public:
  managed_work() noexcept = default;

  /// The line to the work's device (its id, for linking and sending).
  [[nodiscard]] backplane::line const& line() const noexcept { return line_; }

  /// Ends the work as a `shutdown{requester}` message would (the work is
  /// cancelled and finishes, the device disconnects cleanly, the handler gets
  /// `crash::power_off(requester)`), without the message's pass through the
  /// device's mailbox. Does nothing once the end is decided.
  ///
  /// Thread-safety: call it on the work's executor only (from any other
  /// thread, send `line().request_shutdown(requester)` instead).
  void request_stop(device_id requester) const {
    if (auto r = run_.lock()) r->request_stop(requester);
  }

 private:
  template <class Ex, class T, class E, class AwEx, class Handler>
  friend managed_work spawn_managed(Ex const&, device,
                                    boost::asio::awaitable<boost::system::result<T, E>, AwEx>,
                                    Handler&&);
  template <class Ex, class T, class E, class AwEx, class Handler>
  friend managed_work spawn_managed(Ex const&, std::reference_wrapper<device>,
                                    boost::asio::awaitable<boost::system::result<T, E>, AwEx>,
                                    Handler&&);
  managed_work(std::shared_ptr<detail::managed_run> const& run, backplane::line l) noexcept
      : run_(run), line_(std::move(l)) {}
  std::weak_ptr<detail::managed_run> run_;
  backplane::line line_;
};

namespace detail {

/// The typed half of a run: the work's result until the end, and the handler.
template <class T, class E, class Handler>
class managed_run_of final : public managed_run {
 public:
  using work_result = boost::system::result<T, E>;
  using end_result = boost::system::result<T, crash<E>>;

  template <class Device>
  managed_run_of(Device d, boost::asio::any_io_executor ex, Handler h)
      : managed_run(std::move(d), std::move(ex)), handler_(std::move(h)) {}
  ~managed_run_of() override { forget_op_slot(); }

  std::optional<work_result> result_;

 private:
  [[nodiscard]] std::exception_ptr returned_cause() const noexcept override {
    return make_returned_error(result_->error());
  }

  end_result take() {
    switch (end_) {
      case managed_outcome::value:
        if constexpr (std::is_void_v<T>) {
          return end_result();
        } else {
          return end_result(boost::system::in_place_value, std::move(**result_));
        }
      case managed_outcome::error:
        return end_result(boost::system::in_place_error, crash<E>::error(result_->error()));
      case managed_outcome::cascade:
        return end_result(boost::system::in_place_error, crash<E>::cascade(who_, cascade_fault_));
      case managed_outcome::power_off:
        return end_result(boost::system::in_place_error, crash<E>::power_off(who_));
      case managed_outcome::panic:
      case managed_outcome::running: break;
    }
    return end_result(boost::system::in_place_error, crash<E>::panic(std::move(panic_)));
  }

  void complete() override {
    end_result r = take();
    result_.reset();
    Handler h(std::move(handler_));
    using assoc = boost::asio::associated_executor_t<Handler, boost::asio::system_executor>;
    if constexpr (std::is_same_v<assoc, boost::asio::system_executor>) {
      // No executor of its own: it runs here, on the work's executor.
      std::move(h)(std::move(r));
    } else {
      auto ex = boost::asio::get_associated_executor(h);
      boost::asio::dispatch(
          ex, [h = std::move(h), r = std::move(r)]() mutable { std::move(h)(std::move(r)); });
    }
  }

  Handler handler_;
};

/// co_spawn's completion for the work.
template <class T, class E, class Handler>
struct managed_work_done {
  std::shared_ptr<managed_run> run;
  void operator()(std::exception_ptr thrown, boost::system::result<T, E> r) const {
    bool const error = !thrown && r.has_error();
    if (!thrown) static_cast<managed_run_of<T, E, Handler>&>(*run).result_.emplace(std::move(r));
    managed_run::work_ended(run, std::move(thrown), error);
  }
};

}  // namespace detail

namespace detail {
/// Both spawn_managed overloads: the run, the work co_spawned, the listener armed.
template <class T, class E, class Ex, class Device, class AwEx, class Handler>
std::shared_ptr<managed_run> start_managed(
    Ex const& ex, Device d, boost::asio::awaitable<boost::system::result<T, E>, AwEx> work,
    Handler&& on_end) {
  using handler_t = std::decay_t<Handler>;
  using run_t = managed_run_of<T, E, handler_t>;
  static_assert(std::is_invocable_v<handler_t, boost::system::result<T, crash<E>>>,
                "backplane::spawn_managed: on_end must be callable as "
                "on_end(boost::system::result<T, backplane::crash<E>>)");
  static_assert(std::is_default_constructible_v<boost::system::result<T, E>>,
                "backplane::spawn_managed: the work's boost::system::result<T, E> needs a "
                "default-constructible T (co_spawn makes one when the work throws); return "
                "result<void, E> if the value is not needed");
  auto slot = boost::asio::get_associated_cancellation_slot(on_end);
  std::shared_ptr<managed_run> run =
      std::allocate_shared<run_t>(boost::asio::recycling_allocator<run_t>(), std::move(d),
                                  boost::asio::any_io_executor(ex), std::forward<Handler>(on_end));
  boost::asio::co_spawn(ex, std::move(work),
                        boost::asio::bind_cancellation_slot(
                            run->work_slot(), managed_work_done<T, E, handler_t>{run}));
  managed_run::start(run, slot);
  return run;
}
}  // namespace detail

/// Runs `work` under `d` with `manage`'s rules, and calls `on_end` with how
/// it ended, once the device has disconnected:
///
/// - the work returns a value: clean disconnect; `on_end(value)`;
/// - it returns an error `e`: disconnect with `fault::error()` and a
///   `returned_error` describing `e` as the cause; `crash::error(e)`;
/// - it throws: disconnect with `fault::error()`, the exception as the cause;
///   `crash::panic(exception)`;
/// - a linked device disconnects with a fault: the work is cancelled and
///   finishes, then disconnect with `fault::cascade(that device)`;
///   `crash::cascade(origin, its fault)`;
/// - a linked device disconnects cleanly: forgotten, the work goes on;
/// - a shutdown request arrives (or `request_stop` on the handle): the work is
///   cancelled and finishes, then clean disconnect; `crash::power_off(requester)`;
/// - a message that arrives as the work ends wins over its outcome, as in
///   `manage`.
///
/// Unlike `co_await manage(...)`, no coroutine waits: the work is co_spawned
/// on `ex` and the device is heard through a callback receive, so a managed
/// work costs one coroutine frame, not two (or three in a spawned run).
///
/// `ex` is an executor (convertible to `any_io_executor`); the work, the
/// listener and the end all run on it. On a multi-threaded context pass a
/// strand. `d` must not be received on by anyone else while the work runs (a
/// receive left parked on it ends the run with a panic holding a
/// std::logic_error that says so). T must be default-constructible (co_spawn
/// makes one when the work throws; use result<void, E> if need be).
///
/// @par Completion Signature
/// `void(boost::system::result<T, crash<E>>)`. `on_end` is a completion
/// handler: it runs on its associated executor (dispatched), or on `ex` if it
/// has none. It is called exactly once, unless the execution context is
/// destroyed with the work still parked: then the work's frame, the device
/// (monitors hear `fault::drop()`) and `on_end` are destroyed without a call.
///
/// @par Per-Operation Cancellation
/// A cancellation (any type) emitted on `on_end`'s associated slot, on `ex`,
/// before the work has ended, does what cancelling `manage`'s coroutine does:
/// the work is cancelled and finishes (a request made before the work first
/// ran is held until it has), the device disconnects with a plain
/// `fault::error()`, and `on_end` gets `crash::panic` holding a
/// `boost::system::system_error(operation_aborted)`. A request after the end
/// was decided (a message, `request_stop`) but before the work finished
/// cancels the work again and leaves the end as it was (where `manage`
/// absorbs it): a caller can insist on a work that ignored the first
/// cancellation. After the work has ended a request does nothing.
///
/// Returns a `managed_work` handle. Throws what co_spawn throws (no memory):
/// nothing runs then, and `d` is dropped.
///
/// Thread-safety: may be called from any thread.
template <class Ex, class T, class E, class AwEx, class Handler>
managed_work spawn_managed(Ex const& ex, device d,
                           boost::asio::awaitable<boost::system::result<T, E>, AwEx> work,
                           Handler&& on_end) {
  backplane::line l = d.line();
  return managed_work(
      detail::start_managed<T, E>(ex, std::move(d), std::move(work), std::forward<Handler>(on_end)),
      std::move(l));
}

/// `spawn_managed` on a device the caller keeps: `d` must stay alive, at its
/// address, until `on_end` has run (or the execution context is destroyed).
/// The work may use it meanwhile (link, hand out lines), as a supervisor's
/// child does through its context. If the work takes it (moves it away, say
/// into `manage`), even before this call, the run neither listens to it nor
/// disconnects it: its new owner decides, and `on_end` gets the work's own
/// outcome (the handle's line is then empty).
template <class Ex, class T, class E, class AwEx, class Handler>
managed_work spawn_managed(Ex const& ex, std::reference_wrapper<device> d,
                           boost::asio::awaitable<boost::system::result<T, E>, AwEx> work,
                           Handler&& on_end) {
  // Taken already (moved into manage by whoever made the work): no line.
  backplane::line l = d.get().valid() ? d.get().line() : backplane::line();
  return managed_work(
      detail::start_managed<T, E>(ex, d, std::move(work), std::forward<Handler>(on_end)),
      std::move(l));
}

namespace detail {
struct initiate_manage {
  template <class Handler, class Ex, class T, class E, class AwEx>
  void operator()(Handler&& h, Ex const& ex, device d,
                  boost::asio::awaitable<boost::system::result<T, E>, AwEx> work) const {
    (void)spawn_managed(ex, std::move(d), std::move(work), std::forward<Handler>(h));
  }
};
}  // namespace detail

/// `spawn_managed` as an asynchronous operation: `token` may be any
/// completion token (`use_awaitable`, `deferred` for a `parallel_group`,
/// `experimental::awaitable_operators`' `||`, a handler); the work starts when
/// the operation is initiated (for `use_awaitable` and `deferred`: when it is
/// awaited or launched). No handle is returned.
///
/// @par Completion Signature
/// `void(boost::system::result<T, crash<E>>)`, as `spawn_managed`'s `on_end`.
///
/// @par Per-Operation Cancellation
/// As `spawn_managed`: any type, on `ex`, before the work has ended, cancels
/// the work, waits for it, disconnects with `fault::error()` and completes
/// with `crash::panic(operation_aborted)`. A `||` or `parallel_group` that
/// cancels it therefore still waits for the work to finish.
///
/// Thread-safety: may be called from any thread.
template <class Ex, class T, class E, class AwEx, class Token>
auto async_manage(Ex const& ex, device d,
                  boost::asio::awaitable<boost::system::result<T, E>, AwEx> work, Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::result<T, crash<E>>)>(
      detail::initiate_manage{}, token, ex, std::move(d), std::move(work));
}

}  // namespace backplane
