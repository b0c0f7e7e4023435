#pragma once
// work: a coroutine run beside a device, whose result waits until watch takes it.

#include <backplane/detail/config_check.hpp>
#include <backplane/detail/state.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <atomic>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

namespace backplane {

namespace detail {

template <class T>
struct work_state {
  using value_type = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
  std::optional<value_type> value;
  std::exception_ptr exception;
  std::atomic<bool> done{false};
  // False once the coroutine frame is gone, finished or destroyed unfinished
  // (its execution context shut down): `signal` must not be emitted then, as
  // what it would reach lived in that frame and that context.
  std::atomic<bool> running{false};
  state_ref device;  // the device whose waiter hears that we finished
  boost::asio::cancellation_signal signal;
};

/// The coroutine frame's reference to its state. A parameter rather than a
/// local, so that it is destroyed with the frame even if the body never ran.
template <class T>
struct work_frame_ref {
  explicit work_frame_ref(std::shared_ptr<work_state<T>> s) noexcept : st(std::move(s)) {}
  work_frame_ref(work_frame_ref&&) noexcept = default;
  work_frame_ref& operator=(work_frame_ref&&) = delete;
  ~work_frame_ref() {
    if (st) st->running.store(false, std::memory_order_release);
  }
  std::shared_ptr<work_state<T>> st;
};

template <class T, class Executor>
boost::asio::awaitable<void, Executor> run_work(work_frame_ref<T> ref,
                                                boost::asio::awaitable<T, Executor> a) {
  work_state<T>* st = ref.st.get();
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(a);
      st->value.emplace();
    } else {
      st->value.emplace(co_await std::move(a));
    }
  } catch (...) {
    st->exception = std::current_exception();
  }
  st->done.store(true, std::memory_order_release);
  signal_work(st->device.get());
}

}  // namespace detail

/// A coroutine that runs beside a device and keeps its outcome until `watch`
/// collects it. It starts at the first `watch`, on that coroutine's executor,
/// and goes on running while `watch` returns messages: the same work can be
/// watched again and again until it completes (the seed's `&mut Future`).
///
/// Move-only. Destroying a work that is still running requests terminal
/// cancellation of it; the coroutine then finishes in the background.
///
/// Thread-safety: use a work from the coroutine that watches it. Its
/// coroutine runs on that coroutine's executor: on a multi-threaded context,
/// give the watcher a strand so that watcher and work never run at once.
template <class T, class Executor = boost::asio::any_io_executor>
class work {
 public:
  using value_type = typename detail::work_state<T>::value_type;

  explicit work(boost::asio::awaitable<T, Executor> a)
      : awaitable_(std::move(a)), state_(std::make_shared<detail::work_state<T>>()) {}
  work(work&&) noexcept = default;
  work& operator=(work&&) = delete;
  work(work const&) = delete;
  work& operator=(work const&) = delete;
  ~work() {
    if (state_ && started_ && !done()) cancel();
  }

  [[nodiscard]] bool started() const noexcept { return started_; }
  /// True once the coroutine has returned or thrown.
  [[nodiscard]] bool done() const noexcept { return state_->done.load(std::memory_order_acquire); }
  /// Requests terminal cancellation of the running coroutine. Call it on the
  /// work's executor (the watcher's). No effect before start or after done.
  void cancel() {
    if (started_ && !done() && state_->running.load(std::memory_order_acquire))
      state_->signal.emit(boost::asio::cancellation_type::terminal);
  }

  // --- used by watch / part_manage ---

  /// Starts the coroutine on `ex`; it will wake the waiter of `device`.
  void start(Executor const& ex, detail::state_header* device) {
    if (started_) {
      if (state_->device.get() != device)
        throw std::logic_error(
            "backplane::watch: this work is already watched by another device; a work "
            "belongs to the device that first watched it");
      return;
    }
    detail::add_ref(device);
    state_->device = detail::state_ref(device);
    started_ = true;
    state_->running.store(true, std::memory_order_relaxed);
    boost::asio::co_spawn(
        ex, detail::run_work<T, Executor>(detail::work_frame_ref<T>(state_), std::move(awaitable_)),
        // The handler keeps the state: co_spawn's thread refers to
        // `signal` until it completes, which can be one resumption
        // after the frame (and this work) are gone, when the work
        // finished without ever suspending.
        boost::asio::bind_cancellation_slot(state_->signal.slot(),
                                            [keep = state_](std::exception_ptr) { (void)keep; }));
  }
  /// The value, once done and not thrown. Moves it out.
  [[nodiscard]] value_type take_value() { return std::move(*state_->value); }
  [[nodiscard]] std::exception_ptr const& exception() const noexcept { return state_->exception; }

 private:
  boost::asio::awaitable<T, Executor> awaitable_;
  std::shared_ptr<detail::work_state<T>> state_;
  bool started_ = false;
};

template <class T, class Executor>
work(boost::asio::awaitable<T, Executor>) -> work<T, Executor>;

}  // namespace backplane
