#pragma once
// Not API. The thin template shim between an Asio completion token and the
// compiled mailbox: one node type per handler type, everything else in src/.

#include <backplane/detail/config_check.hpp>
#include <backplane/detail/state.hpp>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/recycling_allocator.hpp>
#include <boost/asio/require.hpp>
#include <boost/asio/system_executor.hpp>

#include <atomic>
#include <memory>
#include <new>
#include <utility>

namespace backplane::detail {

/// What a wait's cancellation handler needs of its node, whatever the
/// handler type.
struct cancellable_waiter : waiter {
  cancellable_waiter(complete_fn c, destroy_fn d) noexcept : waiter{c, d} {}
  /// Set by a cancellation emitted before the completion ran.
  std::atomic<bool> cancel_requested{false};
};

/// Runs in the slot of a waiting handler. A waiter still parked is completed
/// with operation_aborted at once. A waiter that a send (or a finished work)
/// has already taken has its completion on the way: the request is recorded,
/// and the completion, which reads it, then aborts and consumes nothing. The
/// node outlives the slot's handler (the completion clears the slot before
/// freeing the node), so `w` is never dangling here.
struct cancel_wait {
  state_header* s;
  cancellable_waiter* w;
  void operator()(boost::asio::cancellation_type type) const noexcept {
    if (type == boost::asio::cancellation_type::none) return;
    w->cancel_requested.store(true, std::memory_order_release);
    cancel(s, w);
  }
};

/// Completion policies: plain wake-up, or wake-up then pop one message.
struct deliver_wake {
  template <class Handler>
  static void run(Handler& h, state_header*, boost::system::error_code ec) {
    std::move(h)(ec);
  }
};
struct deliver_message {
  template <class Handler>
  static void run(Handler& h, state_header* s, boost::system::error_code ec) {
    if (!ec) {
      if (auto m = try_receive(s)) {
        std::move(h)(ec, std::move(*m));
        return;
      }
      // The device disconnected after the wake-up was posted.
      ec = boost::asio::error::operation_aborted;
    }
    std::move(h)(ec, message{});
  }
};

/// The handler's allocator; Asio's per-thread recycling allocator in place of
/// the default std::allocator, as Asio does for its own operations, so that a
/// wait (one per received message) does not cost a malloc/free pair.
template <class Alloc>
struct node_allocator {
  using type = Alloc;
  static type get(Alloc const& a) noexcept { return a; }
};
template <class T>
struct node_allocator<std::allocator<T>> {
  using type = boost::asio::recycling_allocator<T>;
  static type get(std::allocator<T> const&) noexcept { return type(); }
};

template <class Handler, class Deliver>
class wait_node final : public cancellable_waiter {
  using executor_t = boost::asio::associated_executor_t<Handler, boost::asio::system_executor>;
  using handler_alloc_t = boost::asio::associated_allocator_t<Handler>;

  /// The executor the completion goes to, with every property it needs
  /// applied once, here: on a type-erased executor each require/prefer is an
  /// indirect call that makes a new executor object.
  static auto make_work(executor_t const& ex, handler_alloc_t const& a) {
    namespace execution = boost::asio::execution;
    if constexpr (execution::is_executor<executor_t>::value) {
      // Tracked: a pending wait keeps run() going. Never blocking: the
      // handler never runs inline in the notifier's call.
      auto w = boost::asio::prefer(boost::asio::require(ex, execution::blocking.never),
                                   execution::outstanding_work.tracked);
      if constexpr (std::is_same_v<handler_alloc_t, std::allocator<void>>) {
        (void)a;
        return w;
      } else {
        return boost::asio::prefer(std::move(w), execution::allocator(a));
      }
    } else {
      (void)a;
      return boost::asio::prefer(ex, execution::outstanding_work.tracked);
    }
  }
  using work_t = decltype(make_work(std::declval<executor_t const&>(),
                                    std::declval<handler_alloc_t const&>()));
  using alloc_t = typename std::allocator_traits<
      typename node_allocator<handler_alloc_t>::type>::template rebind_alloc<wait_node>;

 public:
  /// Allocates and builds the node. If that throws, `h` is left as it was.
  static wait_node* make(Handler&& h, state_ref s) {
    alloc_t alloc(node_allocator<handler_alloc_t>::get(boost::asio::get_associated_allocator(h)));
    wait_node* n = std::allocator_traits<alloc_t>::allocate(alloc, 1);
    try {
      return ::new (static_cast<void*>(n)) wait_node(std::move(h), std::move(s));
    } catch (...) {
      std::allocator_traits<alloc_t>::deallocate(alloc, n, 1);
      throw;
    }
  }

  /// The execution context the completion will go to, before a node exists.
  static boost::asio::execution_context& context_of(Handler const& h) {
    auto ex = boost::asio::get_associated_executor(h);
    if constexpr (boost::asio::execution::is_executor<executor_t>::value) {
      return boost::asio::query(ex, boost::asio::execution::context);
    } else {
      return ex.context();
    }
  }

  [[nodiscard]] boost::asio::execution_context& context() const noexcept {
    return boost::asio::query(work_, boost::asio::execution::context);
  }

 private:
  wait_node(Handler&& h, state_ref s)
      : cancellable_waiter(&do_complete, &do_destroy),
        work_(make_work(boost::asio::get_associated_executor(h),
                        boost::asio::get_associated_allocator(h))),
        handler_(std::move(h)),
        state_(std::move(s)) {}

  static void free(wait_node* n) noexcept {
    alloc_t alloc(
        node_allocator<handler_alloc_t>::get(boost::asio::get_associated_allocator(n->handler_)));
    n->~wait_node();
    std::allocator_traits<alloc_t>::deallocate(alloc, n, 1);
  }

  /// Frees a node that will never run: its slot forgets our handler first,
  /// so that a later emission cannot reach freed memory.
  static void discard(wait_node* n) noexcept {
    boost::asio::get_associated_cancellation_slot(n->handler_).clear();
    free(n);
  }

  static void do_destroy(waiter* base) noexcept { discard(static_cast<wait_node*>(base)); }

  /// The node while its completion is queued: discarded if the executor
  /// destroys the completion without running it (its context shuts down).
  class queued {
   public:
    explicit queued(wait_node* n) noexcept : n_(n) {}
    queued(queued&& o) noexcept : n_(std::exchange(o.n_, nullptr)) {}
    queued& operator=(queued&&) = delete;
    ~queued() {
      if (n_) discard(n_);
    }
    [[nodiscard]] wait_node* release() noexcept { return std::exchange(n_, nullptr); }

   private:
    wait_node* n_;
  };

  /// The completion, on the waiter's own executor.
  static void finish(wait_node* n, boost::system::error_code ec) {
    // The slot is cleared here, where cancellation is emitted (Asio's rule
    // for slots); after that nothing can set `cancel_requested`. A request
    // that came after the wait was taken but before now wins: the caller may
    // already count this operation as cancelled (a `||` whose other branch
    // finished first drops our result), so nothing is consumed and the
    // message stays first in the mailbox for the next receive.
    boost::asio::get_associated_cancellation_slot(n->handler_).clear();
    if (!ec && n->cancel_requested.load(std::memory_order_acquire))
      ec = boost::asio::error::operation_aborted;
    Handler h(std::move(n->handler_));
    state_ref s(std::move(n->state_));
    free(n);  // before the upcall, so that the handler may reuse the memory
    Deliver::run(h, s.get(), ec);
  }

  static void do_complete(waiter* base, boost::system::error_code ec) noexcept {
    auto* n = static_cast<wait_node*>(base);
    auto alloc = boost::asio::get_associated_allocator(n->handler_);
    work_t work(std::move(n->work_));
    auto fn = [q = queued(n), ec]() mutable { finish(q.release(), ec); };
    // Straight onto the waiter's executor: boost::asio::post would wrap an
    // allocator-bound handler in a work_dispatcher, a second type-erased hop.
    // The post allocates (Asio's operation); failing, it leaves nobody to
    // tell and a notification that cannot be dropped: the documented end.
    try {
      if constexpr (boost::asio::execution::is_executor<work_t>::value) {
        work.execute(std::move(fn));
      } else {
        boost::asio::post(work, boost::asio::bind_allocator(alloc, std::move(fn)));
      }
    } catch (...) {
      fatal("out of memory posting a device's wake-up to its executor");
    }
  }

  work_t work_;
  Handler handler_;
  state_ref state_;
};

template <class Handler, class Deliver>
void start_wait(Handler&& h, state_header* s, wake_on on) {
  using node = wait_node<std::decay_t<Handler>, Deliver>;
  // Whatever can fail (each may allocate) comes before the waiter exists:
  // the context's waiter_service, the slot's memory (sized by a handler that
  // cancels nothing, then reused), the node. If one fails, the wait completes
  // with no_memory, posted like any completion, with nothing parked or
  // consumed: a coroutine (use_awaitable runs the initiation after it has
  // suspended, where a throw would leave io_context::run() and strand it)
  // hears it as an error. Only if that post fails too does this throw.
  auto slot = boost::asio::get_associated_cancellation_slot(h);
  node* n = nullptr;
  try {
    prepare_wait(node::context_of(h));
    if (slot.is_connected()) slot.template emplace<cancel_wait>(cancel_wait{s, nullptr});
    add_ref(s);
    n = node::make(std::move(h), state_ref(s));
  } catch (std::bad_alloc const&) {
    if (slot.is_connected()) slot.clear();
    auto ex = boost::asio::get_associated_executor(h);
    boost::asio::post(ex, [h = std::move(h)]() mutable {
      Deliver::run(h, nullptr, boost::asio::error::no_memory);
    });
    return;
  }
  if (slot.is_connected()) slot.template emplace<cancel_wait>(cancel_wait{s, n});
  arm(s, n, on, n->context());
}

struct initiate_wait {
  template <class Handler>
  void operator()(Handler&& h, state_header* s, wake_on on) const {
    start_wait<Handler, deliver_wake>(std::forward<Handler>(h), s, on);
  }
};

struct initiate_receive {
  template <class Handler>
  void operator()(Handler&& h, state_header* s) const {
    start_wait<Handler, deliver_message>(std::forward<Handler>(h), s, wake_on::message);
  }
};

/// Completes (void(error_code)) when `on` is satisfied; consumes nothing.
template <class Token>
auto async_wait(state_header* s, wake_on on, Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code)>(initiate_wait{}, token,
                                                                             s, on);
}

}  // namespace backplane::detail
