#pragma once
// dynamic_supervisor: children made from one template at runtime, each with
// its own arguments, known by device id (OTP's simple_one_for_one, Elixir's
// DynamicSupervisor).

#include <backplane/device_id.hpp>
#include <backplane/fault.hpp>
#include <backplane/line.hpp>
#include <backplane/supervisor/auto_shutdown.hpp>
#include <backplane/supervisor/child_spec.hpp>
#include <backplane/supervisor/clock.hpp>
#include <backplane/supervisor/detail/reply.hpp>
#include <backplane/supervisor/errors.hpp>
#include <backplane/supervisor/events.hpp>
#include <backplane/supervisor/pool_errors.hpp>
#include <backplane/supervisor/supervisor.hpp>
#include <backplane/supervisor/supervisor_spec.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>

#include <spdlog/fwd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace backplane {

/// A dynamic supervisor's declaration: its restart intensity, its limit on
/// children, and the policies every child of its one template shares.
struct dynamic_supervisor_spec {
  std::string name = "dynamic_supervisor";  ///< last element of the supervisor path
  /// Restart intensity, as supervisor_spec's: more than `max_restarts`
  /// restarts within `period` stops every child and ends the supervisor
  /// with a fault.
  std::uint32_t max_restarts = 3;
  std::chrono::nanoseconds period = std::chrono::seconds(5);
  /// A start beyond this many children completes with pool_errc::max_children.
  std::size_t max_children = std::numeric_limits<std::size_t>::max();
  /// Must stay `never`, as OTP requires of simple_one_for_one (since OTP 27):
  /// children started on demand come and go by design, so their exits are no
  /// sign that the supervisor's work is done. validate() rejects any other
  /// value, saying what to do instead (the dynamic supervisor may itself be a
  /// significant child of a supervisor_spec with auto_shutdown).
  backplane::auto_shutdown auto_shutdown = backplane::auto_shutdown::never;

  // --- the children's policies (one template, so one set) ---
  std::string child_name = "child";  ///< the `child` field of their reports
  restart_type restart = restart_type::permanent;
  shutdown_policy shutdown = shutdown_policy::timeout(std::chrono::seconds(5));
  child_kind kind = child_kind::worker;
  std::optional<backoff_policy> backoff{};
  /// Must stay false: significant children need auto_shutdown, which a
  /// dynamic supervisor does not have (see above; OTP rejects both).
  bool significant = false;

  // --- options, as supervisor_spec's (inherited from a parent supervisor when empty) ---
  std::shared_ptr<supervisor_clock> clock{};
  std::shared_ptr<spdlog::logger> logger{};
  std::optional<report_format> format{};
  std::function<void(supervisor_event const&)> observer{};
  std::optional<bool> child_strands{};
};

/// Throws std::invalid_argument saying what is wrong and what to do: an empty
/// name or one with '/', a period that is not positive, max_children == 0,
/// auto_shutdown other than `never`, significant children, a negative
/// shutdown timeout, a nonsensical backoff.
void validate(dynamic_supervisor_spec const& spec);

/// One row of `which_children`.
struct dynamic_child_info {
  /// The running incarnation's device; while restarting, the last one's
  /// (the id `async_terminate_child` takes).
  device_id device{};
  child_status status = child_status::running;
  std::uint64_t incarnation = 0;
};

namespace detail {
class dynamic_supervisor_impl;
}  // namespace detail

/// The part of a dynamic supervisor's handle that does not depend on its
/// template's arguments. Copyable; the supervisor runs until it is asked to
/// stop (`async_stop`, a shutdown message to its line, its parent) or gives
/// up, whether or not handles remain.
///
/// Thread-safety: every member may be called from any thread. Completion
/// handlers run on their associated executor, or on the supervisor's; never
/// inside the initiating call.
///
/// Per-operation cancellation: not supported. A call, once made, is carried
/// out and answered (with supervisor_errc::supervisor_down if the supervisor
/// ended first).
class dynamic_supervisor_base {
 public:
  using executor_type = boost::asio::any_io_executor;

  [[nodiscard]] device_id id() const;
  [[nodiscard]] backplane::line line() const;
  [[nodiscard]] std::string const& path() const;

  /// Stops the child whose running (or last) incarnation is `child`, under
  /// the template's shutdown policy, and forgets it: a dynamic child is not
  /// kept once terminated (OTP's simple_one_for_one). O(1). A child that
  /// ignores its cancellation too (brutal, or after its timeout) is
  /// abandoned after a grace period (the timeout again, or 5 s for brutal):
  /// reported (`shutdown_error`, action `abandon`), unlinked and forgotten,
  /// and this completes; `infinity` waits for it.
  /// @par Completion Signature `void(boost::system::error_code)`
  /// Errors: supervisor_errc::not_found (no such child: it ended or was
  /// terminated), supervisor_errc::supervisor_down.
  template <class Token>
  auto async_terminate_child(device_id child, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [impl = impl_](auto h, device_id c) {
          terminate_child(impl, c,
                          detail::erase_reply<void(boost::system::error_code)>(std::move(h),
                                                                               executor_of(impl)));
        },
        token, child);
  }
  /// The children in start order.
  /// @par Completion Signature `void(boost::system::error_code, std::vector<dynamic_child_info>)`
  /// Errors: supervisor_errc::supervisor_down.
  template <class Token>
  auto async_which_children(Token&& token) {
    using sig = void(boost::system::error_code, std::vector<dynamic_child_info>);
    return boost::asio::async_initiate<Token, sig>(
        [impl = impl_](auto h) {
          which_children(impl, detail::erase_reply<sig>(std::move(h), executor_of(impl)));
        },
        token);
  }
  /// OTP's count_children: `specs` and `active` count children (a restarting
  /// one is not active); all are workers or all supervisors.
  /// @par Completion Signature `void(boost::system::error_code, child_counts)`
  /// Errors: supervisor_errc::supervisor_down.
  template <class Token>
  auto async_count_children(Token&& token) {
    using sig = void(boost::system::error_code, child_counts);
    return boost::asio::async_initiate<Token, sig>(
        [impl = impl_](auto h) {
          count_children(impl, detail::erase_reply<sig>(std::move(h), executor_of(impl)));
        },
        token);
  }
  /// Asks the supervisor to stop: every child at once, each under the
  /// shutdown policy (as OTP stops dynamic children), then its device
  /// cleanly. Completes when all have ended, or at once if it had. Children
  /// that ignore their cancellation are abandoned as async_terminate_child
  /// says and listed in `supervisor_exit::abandoned` (as `#<device id>`).
  /// If the supervisor's own bookkeeping fails (std::bad_alloc), it ends at
  /// once with `fault::error()` (the exception as cause, heard by its
  /// monitors) and this completes with that exit.
  /// @par Completion Signature `void(boost::system::error_code, supervisor_exit)`
  template <class Token>
  auto async_stop(Token&& token) {
    using sig = void(boost::system::error_code, supervisor_exit);
    return boost::asio::async_initiate<Token, sig>(
        [impl = impl_](auto h) {
          stop(impl, true, detail::erase_reply<sig>(std::move(h), executor_of(impl)));
        },
        token);
  }
  /// Completes when the supervisor has ended, however it ended.
  /// @par Completion Signature `void(boost::system::error_code, supervisor_exit)`
  template <class Token>
  auto async_wait(Token&& token) {
    using sig = void(boost::system::error_code, supervisor_exit);
    return boost::asio::async_initiate<Token, sig>(
        [impl = impl_](auto h) {
          stop(impl, false, detail::erase_reply<sig>(std::move(h), executor_of(impl)));
        },
        token);
  }

 protected:
  using impl_ptr = std::shared_ptr<detail::dynamic_supervisor_impl>;
  template <class T>
  using handler_t = boost::asio::any_completion_handler<void(boost::system::error_code, T)>;
  using void_handler_t = boost::asio::any_completion_handler<void(boost::system::error_code)>;

  explicit dynamic_supervisor_base(impl_ptr impl) noexcept : impl_(std::move(impl)) {}
  static impl_ptr make(executor_type ex, dynamic_supervisor_spec spec);
  static executor_type executor_of(impl_ptr const& impl);
  static void start_child(impl_ptr const&, start_function, handler_t<device_id>);
  static void terminate_child(impl_ptr const&, device_id, void_handler_t);
  static void which_children(impl_ptr const&, handler_t<std::vector<dynamic_child_info>>);
  static void count_children(impl_ptr const&, handler_t<child_counts>);
  static void stop(impl_ptr const&, bool request, handler_t<supervisor_exit>);
  /// The start function of dynamic_supervisor_child: the nested supervisor
  /// runs on ctx's device; `started` gets it once it runs.
  static start_result start_nested(dynamic_supervisor_spec const& spec, child_context& ctx,
                                   std::function<void(impl_ptr)> const& started);

  impl_ptr impl_;
};

/// A dynamic supervisor whose children are made by a template taking
/// `Args...` besides the child's device (or child_context).
template <class... Args>
class dynamic_supervisor : public dynamic_supervisor_base {
 public:
  /// The template, adapted: what a start function of one child calls.
  using child_template = std::function<start_result(child_context&, Args const&...)>;

  /// Validates `spec` (throws std::invalid_argument) and starts the
  /// supervisor, with no children, on `ex` (pass a strand on a
  /// multi-threaded context). `fn(device&, Args const&...)` or
  /// `fn(child_context&, Args const&...)` returns what a start function
  /// returns (a run, a managed work or a start_result); it is called once
  /// per start and restart, with the arguments the child was started with.
  /// A coroutine taking the arguments must take them by value.
  template <class Fn>
  [[nodiscard]] static dynamic_supervisor start(executor_type ex, dynamic_supervisor_spec spec,
                                                Fn fn) {
    return dynamic_supervisor(make(std::move(ex), std::move(spec)), adapt(std::move(fn)));
  }

  /// Starts a child: `async_start_child(args..., token)`. The arguments are
  /// kept (copied) for its restarts. O(1), whatever the number of children.
  /// @par Completion Signature `void(boost::system::error_code, device_id)`
  /// Errors: pool_errc::max_children, supervisor_errc::start_failed (the
  /// start function threw or returned a start_error: the report says why;
  /// the child is forgotten), supervisor_errc::supervisor_down.
  template <class... Ts>
  auto async_start_child(Ts&&... ts) {
    static_assert(sizeof...(Ts) == sizeof...(Args) + 1,
                  "backplane: async_start_child takes the template's arguments, then a completion "
                  "token");
    return start_with(std::forward_as_tuple(std::forward<Ts>(ts)...),
                      std::make_index_sequence<sizeof...(Args)>{});
  }

  /// A child of a supervisor_spec that is a dynamic supervisor (kind
  /// `supervisor`, shutdown `infinity`, restart `permanent`). Its children
  /// are started at runtime, through the handle `on_start` receives each
  /// time it starts (a restart starts it empty, with a new handle).
  template <class Fn>
  [[nodiscard]] static child_spec as_child(std::string id, dynamic_supervisor_spec spec, Fn fn,
                                           std::function<void(dynamic_supervisor)> on_start = {}) {
    validate(spec);
    child_spec c;
    c.id = std::move(id);
    c.kind = child_kind::supervisor;
    c.shutdown = shutdown_policy::infinity();
    auto shared = std::make_shared<dynamic_supervisor_spec const>(std::move(spec));
    auto tmpl = adapt(std::move(fn));
    c.start = [shared, tmpl, on_start = std::move(on_start)](child_context& ctx) {
      return start_nested(*shared, ctx, [&](impl_ptr impl) {
        if (on_start) on_start(dynamic_supervisor(std::move(impl), tmpl));
      });
    };
    return c;
  }

 private:
  dynamic_supervisor(impl_ptr impl, std::shared_ptr<child_template const> tmpl) noexcept
      : dynamic_supervisor_base(std::move(impl)), tmpl_(std::move(tmpl)) {}

  template <class Fn>
  static std::shared_ptr<child_template const> adapt(Fn fn) {
    if constexpr (std::is_invocable_v<Fn&, child_context&, Args const&...>) {
      return std::make_shared<child_template const>(
          [fn = std::move(fn)](child_context& c, Args const&... a) mutable -> start_result {
            return fn(c, a...);
          });
    } else {
      static_assert(std::is_invocable_v<Fn&, device&, Args const&...>,
                    "backplane: a dynamic supervisor's template takes backplane::device& or "
                    "backplane::child_context&, then the children's arguments");
      return std::make_shared<child_template const>(
          [fn = std::move(fn)](child_context& c, Args const&... a) mutable -> start_result {
            return fn(c.device, a...);
          });
    }
  }

  template <class Tuple, std::size_t... I>
  auto start_with(Tuple t, std::index_sequence<I...>) {
    start_function f = [tmpl = tmpl_, args = std::tuple<Args...>(std::get<I>(t)...)](
                           child_context& c) -> start_result {
      return std::apply([&](Args const&... a) { return (*tmpl)(c, a...); }, args);
    };
    using sig = void(boost::system::error_code, device_id);
    return boost::asio::async_initiate<std::tuple_element_t<sizeof...(Args), Tuple>, sig>(
        [impl = impl_](auto h, start_function fn) {
          start_child(impl, std::move(fn),
                      detail::erase_reply<sig>(std::move(h), executor_of(impl)));
        },
        std::get<sizeof...(Args)>(t), std::move(f));
  }

  std::shared_ptr<child_template const> tmpl_;
};

}  // namespace backplane
