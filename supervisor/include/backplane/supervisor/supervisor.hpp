#pragma once
// supervisor: an OTP-style supervisor built from devices, links and messages.

#include <backplane/device_id.hpp>
#include <backplane/fault.hpp>
#include <backplane/line.hpp>
#include <backplane/supervisor/child_spec.hpp>
#include <backplane/supervisor/detail/cancellable_reply.hpp>
#include <backplane/supervisor/errors.hpp>
#include <backplane/supervisor/supervisor_spec.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <any>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace backplane {

enum class child_status : std::uint8_t {
  running,     ///< its current incarnation is alive
  restarting,  ///< waiting for a backoff delay or a retried start
  stopped,     ///< terminated (terminate_child) or failed to restart; spec kept
};

/// One row of `which_children`.
struct child_info {
  std::string id{};
  std::optional<device_id> device{};  ///< the running incarnation, if any
  child_kind kind = child_kind::worker;
  restart_type restart = restart_type::permanent;
  child_status status = child_status::stopped;
  std::uint64_t incarnation = 0;
};

/// What `async_start_child` and `async_restart_child` complete with, beside
/// the error code: OTP's `{ok, Pid}`, `{ok, Pid, Info}`, `{ok, undefined}`
/// (ignore) and `{error, Reason}` in one value.
struct child_start_result {
  /// The new incarnation's device; the running child's with `running`;
  /// nobody when ignored or failed.
  device_id device{};
  /// The start function said `start_result::ignore()`: no child runs, the
  /// spec is kept (a temporary one is dropped), and it is no error.
  bool ignored = false;
  /// What the start function attached with `start_result::with_info`.
  std::any info{};
  /// With `start_failed`: why, in the same typed fields as the start_error
  /// report (kind `exception` with exception_type and message, or kind
  /// `start_error` with the start_error's reason as message); nullopt
  /// otherwise. (Optional, so that the common answer moves cheaply through
  /// the completion's layers.)
  std::optional<event_reason> reason{};
  /// The device: code written for an answer that was only the device still
  /// compiles (`device_id d = co_await sup.async_start_child(...)`).
  operator device_id() const noexcept { return device; }  // NOLINT: implicit by design
  /// Whether a child runs (as `device` tests): false when ignored or failed.
  explicit operator bool() const noexcept { return static_cast<bool>(device); }
};

/// `count_children`: specs, running children, supervisors, workers (OTP's).
struct child_counts {
  std::size_t specs = 0;
  std::size_t active = 0;
  std::size_t supervisors = 0;
  std::size_t workers = 0;
};

/// The restart budget as an operator reads it.
struct restart_budget {
  std::uint32_t restarts_in_window = 0;
  std::uint32_t max_restarts = 0;
  std::chrono::nanoseconds period{0};
  /// Until the oldest restart in the window leaves it (0 when none).
  std::chrono::nanoseconds until_oldest_expires{0};
};

/// One node of `async_tree_view`: a supervisor, or one of its children as
/// its supervisor lists it; a nested supervisor's node holds its own
/// children, level by level.
struct tree_node {
  /// The supervisor's path and the child's id, "app/db/conn" (a root: its
  /// name, as `supervisor::path()` says).
  std::string path{};
  /// The child's row, as `which_child` gives it. For the node of the
  /// supervisor asked: its id is its path, its kind `supervisor`, its status
  /// `running`, its device its own (its parent's row says more).
  child_info info{};
  /// A supervisor whose children are listed below (`inspected`): its budget.
  std::optional<restart_budget> budget{};
  /// True when `children` lists the node's children: the node is a
  /// supervisor that answered. False for workers, for supervisors that are
  /// not running or ended before they answered, and for dynamic supervisors
  /// and worker pools (not reachable through this view yet).
  bool inspected = false;
  std::vector<tree_node> children{};
};

/// How a supervisor ended.
struct supervisor_exit {
  bool intensity_exceeded = false;  ///< gave up: too many restarts
  /// Ended by itself, cleanly: its significant children had ended
  /// (supervisor_spec::auto_shutdown).
  bool auto_shutdown = false;
  std::optional<backplane::fault> fault{};  ///< its device's fault (nullopt: clean shutdown)
  /// Reports during which the observer or the logger threw (each event
  /// still reached the other; the first failure is told on stderr).
  std::uint64_t failed_reports = 0;
  /// Children it abandoned (in its life, or while stopping): each ignored
  /// its cancellation past its grace period and was unlinked, reported
  /// (`shutdown_error`, action `abandon`) and left running. Their coroutines
  /// still count as work on their executor, so `io_context::run()` does not
  /// return until they end. A program that must exit promptly checks this
  /// after `async_stop` and stops the context (`io_context::stop()`;
  /// destroying the context then frees the abandoned coroutines without
  /// running them), or makes its runs honour cancellation.
  std::vector<std::string> abandoned{};
};

namespace detail {
class supervisor_impl;
struct supervisor_access;
}  // namespace detail

/// A handle to a running supervisor. Copyable; the supervisor runs until it
/// is asked to stop (`async_stop`, a shutdown message to its line, its parent)
/// or gives up, whether or not handles remain.
///
/// Thread-safety: every member may be called from any thread. Completion
/// handlers run on their associated executor, or on the supervisor's; a call
/// the supervisor can answer at once (it was idle) may complete inside the
/// supervisor's handler when that is the handler's executor too, never
/// inside the initiating call.
///
/// Per-operation cancellation: a caller's cancellation (a timer raced with
/// `||`, a parallel_group, a cancellation slot bound to the handler) ends
/// the caller's wait, never the action half-done. A call, once made, is
/// carried out whole, whether or not anyone still waits; a cancelled wait
/// completes at once with `operation_aborted` (its value default), and the
/// supervisor's answer, when it comes, is dropped. A cancellation that
/// arrives after the answer was given is ignored: the handler gets the
/// answer. Queries and waits (`which_children`, `count_children`,
/// `restart_budget`, `async_wait`) have no side effect and accept every
/// cancellation type; calls that act (`start_child`, `terminate_child`,
/// `restart_child`, `delete_child`, `async_stop`) accept `terminal` and
/// `partial` (their effect is well defined: look with `which_children`) and
/// ignore `total`, which would promise that nothing happened. Emit the
/// cancellation where the handler runs (its executor or strand), as for any
/// Asio operation. Stopping with a deadline is `async_stop` raced with a
/// timer: the stop goes on after the wait ends; `async_wait` waits for it again.
///
/// The runtime API follows OTP's: `start_child` adds a child (a failed start
/// discards the spec), `terminate_child` stops one and keeps its spec,
/// `restart_child` starts a stopped one (a failed start keeps the spec),
/// `delete_child` removes a stopped one's spec.
class supervisor {
 public:
  using executor_type = boost::asio::any_io_executor;

  /// Validates `spec` (throws std::invalid_argument), creates the
  /// supervisor's device and starts the children in declared order, on the
  /// calling thread: call it before the context runs or from `ex`. If a child
  /// fails to start, those started are stopped in reverse order (in the
  /// background, on `ex`) and the failure is returned.
  ///
  /// On a multi-threaded context, pass a strand.
  [[nodiscard]] static boost::system::result<supervisor, start_failure> start(executor_type ex,
                                                                              supervisor_spec spec);

  [[nodiscard]] device_id id() const;
  [[nodiscard]] backplane::line line() const;
  [[nodiscard]] std::string const& path() const;

  /// Starts a new child after the others (OTP's start_child). Throws
  /// std::invalid_argument at the call, whatever the token, if `spec` fails
  /// `validate` or is significant under `auto_shutdown::never` (a
  /// programming error, never an error code).
  /// @par Completion Signature `void(boost::system::error_code, child_start_result)`
  /// the new child's device and the info its start function attached, or
  /// `ignored` (no error: the spec is kept unless temporary). Errors:
  /// `already_present` (a child with this id is stopped or waiting to
  /// restart), `running` (it runs: `device` is its), `start_failed` (the
  /// start function threw or returned a start_error: `reason` says why; the
  /// spec is dropped), `supervisor_down`. With `use_awaitable` an error
  /// throws `system_error` and the reason is lost: use `as_tuple`.
  /// @par Per-Operation Cancellation terminal, partial: the wait ends
  /// (operation_aborted); the call goes on whole.
  template <class Token>
  auto async_start_child(child_spec spec, Token&& token) {
    // Here, not in the initiation: a deferred token (use_awaitable) runs the
    // initiation later, where a throw would escape io_context::run().
    validate_for(impl_, spec);
    return boost::asio::async_initiate<Token, void(boost::system::error_code, child_start_result)>(
        [impl = impl_](auto h, child_spec s) {
          start_child(
              impl, std::move(s),
              any_handler<child_start_result>(std::move(h), impl, detail::action_cancellation));
        },
        token, std::move(spec));
  }
  /// Stops a child by its shutdown policy and keeps its spec (a temporary
  /// child's is dropped); ends a pending restart.
  /// @par Completion Signature `void(boost::system::error_code)`
  /// Errors: `not_found`, `supervisor_down`.
  /// @par Per-Operation Cancellation terminal, partial: the wait ends
  /// (operation_aborted); the call goes on whole.
  template <class Token>
  auto async_terminate_child(std::string id, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [impl = impl_](auto h, std::string i) {
          terminate_child(impl, std::move(i),
                          void_handler(std::move(h), impl, detail::action_cancellation));
        },
        token, std::move(id));
  }
  /// Starts a stopped child again (a failed start keeps the spec; so does
  /// an ignore, which may be tried again).
  /// @par Completion Signature `void(boost::system::error_code, child_start_result)`
  /// as async_start_child's. Errors: `not_found`, `running`, `restarting`,
  /// `start_failed` (`reason` says why), `supervisor_down`.
  /// @par Per-Operation Cancellation terminal, partial: the wait ends
  /// (operation_aborted); the call goes on whole.
  template <class Token>
  auto async_restart_child(std::string id, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, child_start_result)>(
        [impl = impl_](auto h, std::string i) {
          restart_child(
              impl, std::move(i),
              any_handler<child_start_result>(std::move(h), impl, detail::action_cancellation));
        },
        token, std::move(id));
  }
  /// Removes a stopped child's spec.
  /// @par Completion Signature `void(boost::system::error_code)`
  /// Errors: `not_found`, `running`, `restarting`, `supervisor_down`.
  /// @par Per-Operation Cancellation terminal, partial: the wait ends
  /// (operation_aborted); the call goes on whole.
  template <class Token>
  auto async_delete_child(std::string id, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [impl = impl_](auto h, std::string i) {
          delete_child(impl, std::move(i),
                       void_handler(std::move(h), impl, detail::action_cancellation));
        },
        token, std::move(id));
  }
  /// One row per child spec, in start order: the declared children in their
  /// order, then the children added by start_child in the order they were
  /// added; a restarted child keeps its place. (OTP documents no order.)
  /// @par Completion Signature `void(boost::system::error_code, std::vector<child_info>)`
  /// Errors: `supervisor_down` (it has ended).
  /// @par Per-Operation Cancellation terminal, partial, total: the wait ends
  /// (operation_aborted); nothing else changes.
  template <class Token>
  auto async_which_children(Token&& token) {
    return boost::asio::async_initiate<Token,
                                       void(boost::system::error_code, std::vector<child_info>)>(
        [impl = impl_](auto h) {
          which_children(impl, any_handler<std::vector<child_info>>(std::move(h), impl,
                                                                    detail::query_cancellation));
        },
        token);
  }
  /// One child's row, as `async_which_children` would list it.
  /// @par Completion Signature `void(boost::system::error_code, child_info)`
  /// Errors: `not_found` (no child with this id), `supervisor_down`.
  /// @par Per-Operation Cancellation terminal, partial, total: the wait ends
  /// (operation_aborted); nothing else changes.
  template <class Token>
  auto async_which_child(std::string id, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, child_info)>(
        [impl = impl_](auto h, std::string i) {
          which_child(impl, std::move(i),
                      any_handler<child_info>(std::move(h), impl, detail::query_cancellation));
        },
        token, std::move(id));
  }
  /// A copy of a child's spec (OTP's get_childspec), with its start
  /// function: copied if it is copyable, else shared with the supervisor's
  /// (see start_function). A temporary child that has started has none left
  /// (its spec's `start` is empty).
  /// @par Completion Signature `void(boost::system::error_code, child_spec)`
  /// Errors: `not_found` (no child with this id), `supervisor_down`.
  /// @par Per-Operation Cancellation terminal, partial, total: the wait ends
  /// (operation_aborted); nothing else changes.
  template <class Token>
  auto async_get_childspec(std::string id, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, child_spec)>(
        [impl = impl_](auto h, std::string i) {
          get_childspec(impl, std::move(i),
                        any_handler<child_spec>(std::move(h), impl, detail::query_cancellation));
        },
        token, std::move(id));
  }
  /// A handle to the nested supervisor at `path`, as its `path()` says
  /// ("app/db/cache" from the root "app"; this supervisor's own path gives a
  /// handle to itself). Each supervisor on the way answers for its own
  /// child, on its own executor, and hands the question down.
  /// @par Completion Signature `void(boost::system::error_code, std::optional<supervisor>)`
  /// the handle, empty exactly when the error_code is set. Errors:
  /// `not_found` (the path does not start with this supervisor's path, or
  /// names no child, or a worker, or a dynamic supervisor or worker pool),
  /// `supervisor_down` (a supervisor on the path is not running: stopped,
  /// waiting to restart, or ending).
  /// @par Per-Operation Cancellation terminal, partial, total: the wait ends
  /// (operation_aborted); nothing else changes.
  template <class Token>
  auto async_find_supervisor(std::string path, Token&& token) {
    return boost::asio::async_initiate<Token,
                                       void(boost::system::error_code, std::optional<supervisor>)>(
        [impl = impl_](auto h, std::string p) {
          find_supervisor(impl, std::move(p),
                          any_handler<std::optional<supervisor>>(std::move(h), impl,
                                                                 detail::query_cancellation));
        },
        token, std::move(path));
  }
  /// The whole tree below this supervisor, a recursive which_children: this
  /// supervisor's node, its children in start order, and each running nested
  /// supervisor's node with its children and budget, and so on down.
  ///
  /// Each supervisor lists its own children on its own executor and asks its
  /// running nested supervisors through this same call; nothing is locked.
  /// So each level is exact at the moment its supervisor answered, and the
  /// levels are read one after the other, not at one instant: a restart
  /// between two answers shows in one level and not yet in another. A nested
  /// supervisor that ends before it answers is listed with `inspected`
  /// false. The reply waits for every nested supervisor: one whose executor
  /// is blocked delays it (wait with a deadline of your own: `op || timer`;
  /// see the class's note on cancellation).
  /// @par Completion Signature `void(boost::system::error_code, tree_node)`
  /// Errors: `supervisor_down` (this supervisor has ended).
  /// @par Per-Operation Cancellation terminal, partial, total: the wait ends
  /// (operation_aborted); nothing else changes.
  template <class Token>
  auto async_tree_view(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, tree_node)>(
        [impl = impl_](auto h) {
          tree_view(impl, any_handler<tree_node>(std::move(h), impl, detail::query_cancellation));
        },
        token);
  }
  /// @par Completion Signature `void(boost::system::error_code, child_counts)`
  /// Errors: `supervisor_down` (it has ended).
  /// @par Per-Operation Cancellation terminal, partial, total: the wait ends
  /// (operation_aborted); nothing else changes.
  template <class Token>
  auto async_count_children(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, child_counts)>(
        [impl = impl_](auto h) {
          count_children(impl,
                         any_handler<child_counts>(std::move(h), impl, detail::query_cancellation));
        },
        token);
  }
  /// @par Completion Signature `void(boost::system::error_code, restart_budget)`
  /// Errors: `supervisor_down` (it has ended).
  /// @par Per-Operation Cancellation terminal, partial, total: the wait ends
  /// (operation_aborted); nothing else changes.
  template <class Token>
  auto async_restart_budget(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, restart_budget)>(
        [impl = impl_](auto h) {
          budget(impl, any_handler<restart_budget>(std::move(h), impl, detail::query_cancellation));
        },
        token);
  }
  /// Asks the supervisor to stop (children in reverse start order, then its
  /// device cleanly) and completes when it has ended, or at once if it had.
  /// @par Completion Signature `void(boost::system::error_code, supervisor_exit)`
  /// Never fails (the error_code is always clear).
  /// @par Per-Operation Cancellation terminal, partial: the wait ends
  /// (operation_aborted); the stop goes on (async_wait tells when it is over).
  template <class Token>
  auto async_stop(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, supervisor_exit)>(
        [impl = impl_](auto h) {
          stop(impl, true,
               any_handler<supervisor_exit>(std::move(h), impl, detail::action_cancellation));
        },
        token);
  }
  /// Completes when the supervisor has ended, however it ended.
  /// @par Completion Signature `void(boost::system::error_code, supervisor_exit)`
  /// Never fails (the error_code is always clear).
  /// @par Per-Operation Cancellation terminal, partial, total: the wait ends
  /// (operation_aborted); nothing else changes.
  template <class Token>
  auto async_wait(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, supervisor_exit)>(
        [impl = impl_](auto h) {
          stop(impl, false,
               any_handler<supervisor_exit>(std::move(h), impl, detail::query_cancellation));
        },
        token);
  }

 private:
  template <class T>
  using handler_t = boost::asio::any_completion_handler<void(boost::system::error_code, T)>;
  using void_handler_t = boost::asio::any_completion_handler<void(boost::system::error_code)>;

  /// A completion handler that resolves its own executor while its type is
  /// still known, here in the header, and dispatches itself there when
  /// called. Type-erased, it has no executor of its own, so the supervisor
  /// calls it directly (or posts it to its own executor) and Asio never has to
  /// type-erase the handler's executor behind an any_completion_executor (an
  /// allocation per reply). Keeps the handler's executor busy until then, as
  /// Asio requires of a pending operation.
  template <class H>
  struct reply {
    // Not named executor_type: that would make Asio take it for the handler's
    // associated executor.
    using target_executor = boost::asio::associated_executor_t<H, boost::asio::any_io_executor>;
    using allocator_type = boost::asio::associated_allocator_t<H>;
    H handler;
    boost::asio::executor_work_guard<target_executor> work;
    [[nodiscard]] allocator_type get_allocator() const noexcept {
      return boost::asio::get_associated_allocator(handler);
    }
    template <class... Args>
    void operator()(Args... args) {
      // Dispatched on the handler's own executor directly (binding it, rather
      // than dispatch(ex, h), avoids a second hop through a work_dispatcher).
      auto ex = work.get_executor();
      boost::asio::dispatch(boost::asio::bind_executor(
          ex, boost::asio::append(std::move(handler), std::move(args)...)));
      work.reset();
    }
  };
  using impl_ptr = std::shared_ptr<detail::supervisor_impl>;
  /// The supervisor's executor: where a handler without one of its own runs.
  static boost::asio::any_io_executor executor_of(impl_ptr const& impl);
  template <class H>
  static reply<std::decay_t<H>> make_reply(H&& h, impl_ptr const& impl) {
    auto ex = boost::asio::get_associated_executor(h, executor_of(impl));
    return reply<std::decay_t<H>>{std::forward<H>(h), boost::asio::make_work_guard(ex)};
  }
  /// A handler whose caller can cancel (its cancellation slot is connected)
  /// becomes a cancellable_reply, which costs an allocation; the others a
  /// plain reply.
  template <class T, class H>
  static handler_t<T> any_handler(H&& h, impl_ptr const& impl,
                                  boost::asio::cancellation_type allowed) {
    auto slot = boost::asio::get_associated_cancellation_slot(h);
    if (!slot.is_connected()) return handler_t<T>(make_reply(std::forward<H>(h), impl));
    auto ex = boost::asio::get_associated_executor(h, executor_of(impl));
    return handler_t<T>(
        detail::cancellable_reply<std::decay_t<H>, T>(std::forward<H>(h), ex, slot, allowed));
  }
  template <class H>
  static void_handler_t void_handler(H&& h, impl_ptr const& impl,
                                     boost::asio::cancellation_type allowed) {
    auto slot = boost::asio::get_associated_cancellation_slot(h);
    if (!slot.is_connected()) return void_handler_t(make_reply(std::forward<H>(h), impl));
    auto ex = boost::asio::get_associated_executor(h, executor_of(impl));
    return void_handler_t(
        detail::cancellable_reply<std::decay_t<H>>(std::forward<H>(h), ex, slot, allowed));
  }

  /// validate(spec), and a significant child needs this supervisor's auto_shutdown.
  static void validate_for(impl_ptr const&, child_spec const& spec);
  static void start_child(impl_ptr const&, child_spec, handler_t<child_start_result>);
  static void terminate_child(impl_ptr const&, std::string, void_handler_t);
  static void restart_child(impl_ptr const&, std::string, handler_t<child_start_result>);
  static void delete_child(impl_ptr const&, std::string, void_handler_t);
  static void which_children(impl_ptr const&, handler_t<std::vector<child_info>>);
  static void count_children(impl_ptr const&, handler_t<child_counts>);
  // tree_view.cpp
  static void which_child(impl_ptr const&, std::string, handler_t<child_info>);
  static void get_childspec(impl_ptr const&, std::string, handler_t<child_spec>);
  static void find_supervisor(impl_ptr const&, std::string, handler_t<std::optional<supervisor>>);
  static void tree_view(impl_ptr const&, handler_t<tree_node>);

  static void budget(impl_ptr const&, handler_t<restart_budget>);
  static void stop(impl_ptr const&, bool request, handler_t<supervisor_exit>);

  friend struct detail::supervisor_access;
  explicit supervisor(impl_ptr impl) noexcept : impl_(std::move(impl)) {}
  impl_ptr impl_;
};

}  // namespace backplane
