#pragma once
// Not API: a reply whose caller may stop waiting for it (per-operation
// cancellation of the supervisor's runtime API).

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <memory>
#include <utility>

namespace backplane::detail {

/// The cancellation types that end the wait for an answer: every type for a
/// call without side effects (a query, waiting for the end), terminal and
/// partial only for a call whose action goes on whatever the caller does (a
/// total cancellation promises no side effect, which it cannot keep).
inline constexpr boost::asio::cancellation_type query_cancellation =
    boost::asio::cancellation_type::terminal | boost::asio::cancellation_type::partial |
    boost::asio::cancellation_type::total;
inline constexpr boost::asio::cancellation_type action_cancellation =
    boost::asio::cancellation_type::terminal | boost::asio::cancellation_type::partial;

/// Completes a handler `H` of `void(error_code, Ts...)` once: with the
/// supervisor's answer, or with operation_aborted if the caller's
/// cancellation came first. Whichever comes first wins (an atomic flag);
/// the other is dropped without touching the caller's executor. Both
/// completions run on the handler's executor, where the cancellation slot
/// is cleared before the handler runs (so the caller may reuse it), and the
/// handler's executor stays busy until then. An emit from another thread
/// than the handler's executor races with that clear, as with any Asio
/// operation: emit where the handler runs.
template <class H, class... Ts>
class cancellable_reply {
 public:
  using target_executor = boost::asio::associated_executor_t<H, boost::asio::any_io_executor>;

  cancellable_reply(H h, target_executor const& ex, boost::asio::cancellation_slot slot,
                    boost::asio::cancellation_type allowed)
      : st_(std::make_shared<state>(std::move(h), ex, slot)) {
    slot.template emplace<canceller>(st_, allowed);
  }

  /// The supervisor's answer, from any thread.
  template <class... Args>
  void operator()(Args... args) {
    std::shared_ptr<state> s = std::move(st_);
    if (s->done.exchange(true, std::memory_order_acq_rel)) return;  // the caller stopped waiting
    auto ex = s->work.get_executor();
    boost::asio::dispatch(boost::asio::bind_executor(
        ex, [s, ... a = std::move(args)]() mutable { s->finish(std::move(a)...); }));
  }

 private:
  struct state {
    state(H h, target_executor const& ex, boost::asio::cancellation_slot s)
        : handler(std::move(h)), work(ex), slot(s) {}
    H handler;
    boost::asio::executor_work_guard<target_executor> work;
    boost::asio::cancellation_slot slot;
    std::atomic<bool> done{false};

    /// On the handler's executor, once.
    template <class... Args>
    void finish(Args&&... args) {
      slot.clear();  // destroys the canceller, which holds a reference to us: we hold another
      std::move(handler)(std::forward<Args>(args)...);
      work.reset();
    }
  };

  /// Lives in the caller's cancellation slot until the call completes.
  struct canceller {
    canceller(std::shared_ptr<state> s, boost::asio::cancellation_type a)
        : st(std::move(s)), allowed(a) {}
    std::shared_ptr<state> st;
    boost::asio::cancellation_type allowed;
    void operator()(boost::asio::cancellation_type type) const {
      if ((type & allowed) == boost::asio::cancellation_type::none) return;
      if (st->done.exchange(true, std::memory_order_acq_rel)) return;  // answered already
      // Posted, not run here: the handler must not run inside the emit that
      // is running this canceller, which finish destroys.
      boost::asio::post(boost::asio::bind_executor(st->work.get_executor(), [s = st] {
        s->finish(boost::system::error_code(boost::asio::error::operation_aborted), Ts{}...);
      }));
    }
  };

  std::shared_ptr<state> st_;
};

}  // namespace backplane::detail
