#pragma once
// child_spec: how a supervisor starts, restarts and stops one child.

#include <backplane/device.hpp>
#include <backplane/supervisor/detail/managed_launch.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <any>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace backplane {

/// When a child that stopped is started again (OTP's restart types).
enum class restart_type : std::uint8_t {
  permanent,  ///< always
  transient,  ///< only after a fault (not after a clean exit or a shutdown)
  temporary,  ///< never; its spec is dropped when it stops
};

/// Whether a child is a worker or a supervisor (affects only reports and
/// the default shutdown policy).
enum class child_kind : std::uint8_t { worker, supervisor };

/// How a child is stopped: `brutal` cancels its coroutine at once;
/// `timeout(d)` asks it to shut down and cancels it after `d`; `infinity`
/// asks and waits (the default for supervisors, whose children need time).
///
/// What a stop reports (OTP's rules, and ours where a kill can be ignored):
/// nothing for a child that ends as asked (cleanly, or with the
/// cancellation's `operation_aborted`); a `shutdown_error` with the child's
/// reason when it ends with a fault of its own meanwhile — after the kill
/// too, within the grace period, if it throws something other than
/// `operation_aborted` (or disconnects with a cause of its own). After the
/// kill, a plain `fault::error()` (what `manage` ends with when cancelled),
/// a drop or a cascade count as the kill's result (unreported). A child
/// still running after the grace period is abandoned (`shutdown_error`,
/// action `abandon`); its later end is not heard.
class shutdown_policy {
 public:
  using duration = std::chrono::nanoseconds;
  [[nodiscard]] static constexpr shutdown_policy brutal() noexcept {
    return shutdown_policy(kind::brutal, {});
  }
  [[nodiscard]] static constexpr shutdown_policy timeout(duration d) noexcept {
    return shutdown_policy(kind::timeout, d);
  }
  [[nodiscard]] static constexpr shutdown_policy infinity() noexcept {
    return shutdown_policy(kind::infinity, {});
  }
  [[nodiscard]] constexpr bool is_brutal() const noexcept { return kind_ == kind::brutal; }
  [[nodiscard]] constexpr bool is_infinity() const noexcept { return kind_ == kind::infinity; }
  [[nodiscard]] constexpr bool is_timeout() const noexcept { return kind_ == kind::timeout; }
  [[nodiscard]] constexpr duration time() const noexcept { return time_; }

 private:
  enum class kind : std::uint8_t { brutal, timeout, infinity };
  constexpr shutdown_policy(kind k, duration d) noexcept : time_(d), kind_(k) {}
  duration time_;
  kind kind_;
};

/// Per-child exponential restart backoff (beyond OTP): the n-th consecutive
/// restart waits min(max, initial * multiplier^(n-1)), scaled by a random
/// factor in [1 - jitter, 1 + jitter]; after `reset_after` without a crash
/// the count starts again. Intensity is still counted per restart.
struct backoff_policy {
  std::chrono::nanoseconds initial = std::chrono::milliseconds(100);
  std::chrono::nanoseconds max = std::chrono::seconds(10);
  double multiplier = 2.0;
  double jitter = 0.2;
  std::chrono::nanoseconds reset_after = std::chrono::seconds(30);
};

/// Why a start function did not start its child, when it says so by value
/// rather than by throwing.
struct start_error {
  std::string reason{};
};

/// What a start function gives back: the child's life, in one of two forms,
/// a start_error, or an ignore.
///
/// - **A run**, `awaitable<void>`: the child's whole life. It owns what
///   happens to the device: returning normally is a clean exit, throwing is
///   `fault::error()` with the exception as the cause, and it may move the
///   device (into `manage`, say) or disconnect it with a fault itself.
/// - **A managed work**, `awaitable<boost::system::result<T, E>>`: the
///   supervisor runs it under `manage`'s rules, as `manage(device, work)`
///   would, but in one coroutine rather than three, so a restart costs
///   about a third less. A value is a clean exit; an error is
///   `fault::error()`; an exception is `fault::error()` with it as the
///   cause; a linked device's fault cancels the work and ends the child with
///   `fault::cascade(that device)`; a shutdown request (the supervisor's, or
///   anyone's) cancels the work and ends the child cleanly. The device stays
///   with the supervisor, which listens on it: the start function may link
///   it but must not receive on it (the child faults, saying so). The device
///   outlives the work, so the work may keep the `device&` to link it later
///   (on the child's executor). A work that takes the device before it first
///   suspends (moves it, into `manage` say, or disconnects it), or a start
///   function that does, is left to decide its fate, as a run is. Taking it
///   later is a misuse: while the supervisor's receive is parked on it, the
///   new owner's receives fail with `already_started`. `T` must be
///   default-constructible.
///
///   Cancellation: the supervisor cancels the work (terminal) for a linked
///   fault, a shutdown request or a kill; the work sees operation_aborted
///   from whatever it awaits. A work that ignores it while being stopped is
///   cancelled again when its shutdown timeout passes and abandoned after a
///   further grace period, as a run would be (`infinity()` waits for it).
///
/// - **Ignore** (`start_result::ignore()`, OTP's `ignore`): the start
///   function declines to start the child, and that is not a failure. No
///   child runs (its device is disconnected cleanly); the spec is kept (a
///   temporary child's is dropped, as OTP drops it) and shows in
///   `which_children` as stopped, with no device; nothing is counted toward
///   restart intensity beyond the restart that called the start function,
///   and nothing is retried: `async_restart_child` tries again.
///   `async_start_child`/`async_restart_child` complete without error,
///   saying `ignored`. (A dynamic_supervisor does not keep specs: there an
///   ignore is a start failure that says so.)
///
/// A started child may carry extra information for the caller of
/// `async_start_child`/`async_restart_child` (OTP's `{ok, Pid, Info}`):
/// `return start_result(serve(d)).with_info(port);`.
class start_result {
 public:
  start_result(boost::asio::awaitable<void> run)
      : run_(std::move(run)) {}  // NOLINT: implicit by design
  template <class T, class E>
  start_result(boost::asio::awaitable<boost::system::result<T, E>> work)  // NOLINT: implicit
      : managed_(std::make_unique<detail::managed_launch_of<T, E>>(std::move(work))) {}
  start_result(start_error e) : error_(std::move(e)) {}  // NOLINT
  /// The start function declines to start the child (see above).
  [[nodiscard]] static start_result ignore() { return start_result(ignored_tag{}); }

  /// Attaches `info` for the caller of the runtime API (child_start_result::info).
  start_result&& with_info(std::any info) && {
    info_ = std::move(info);
    return std::move(*this);
  }

  /// Not a failure: a run, a managed work, or an ignore.
  [[nodiscard]] bool ok() const noexcept { return !error_; }
  [[nodiscard]] bool ignored() const noexcept { return ignored_; }
  [[nodiscard]] start_error const& error() const { return *error_; }
  /// True for a managed work (take_managed), false for a run (take_run).
  [[nodiscard]] bool managed() const noexcept { return managed_ != nullptr; }
  [[nodiscard]] boost::asio::awaitable<void> take_run() { return std::move(*run_); }
  [[nodiscard]] std::any take_info() { return std::move(info_); }
  /// Not API: the managed work, for the supervisor to start.
  [[nodiscard]] std::unique_ptr<detail::managed_launch> take_managed() {
    return std::move(managed_);
  }

 private:
  struct ignored_tag {};
  explicit start_result(ignored_tag) : ignored_(true) {}
  std::optional<boost::asio::awaitable<void>> run_;
  std::unique_ptr<detail::managed_launch> managed_;
  std::optional<start_error> error_;
  std::any info_;
  bool ignored_ = false;
};

/// What a start function is told about the child it starts. The device is
/// the child's: linked to the supervisor before the start function runs, so
/// no exit can be missed. The context, its device and its strings live as
/// long as the child's run, so a start function that is itself a coroutine
/// taking `child_context&` may use them throughout; the run may move the
/// device (into `manage`, say).
struct child_context {
  backplane::device& device;
  std::string const& supervisor;          ///< the supervisor's path, e.g. "app/db"
  std::string const& id;                  ///< the child's id
  std::uint64_t incarnation;              ///< 1 for the first start, +1 per restart
  boost::asio::any_io_executor executor;  ///< where the child's run will run
  /// Not API: the parent's options, inherited by nested supervisors.
  void const* parent_options = nullptr;
  /// Not API: what the supervisor runs, on the child's executor, instead of
  /// cancelling the run when it has to kill the child (a nested supervisor
  /// stops its own children at once).
  std::function<void()>* on_kill = nullptr;
};

/// Holds a child's start function. Unlike `std::function`, it accepts a
/// move-only callable. A child_spec stays copyable: copying one copies a
/// copyable callable (as std::function did) and shares a move-only one (the
/// copies then call the same object, so they must not be used by
/// supervisors on different threads at once unless it is thread-safe).
///
/// Called on the supervisor's executor, once per incarnation; empty when
/// default-constructed or set to nullptr.
class start_function {
 public:
  start_function() noexcept = default;
  start_function(std::nullptr_t) noexcept {}  // NOLINT: like std::function
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, start_function> &&
                                              std::is_invocable_r_v<start_result, std::decay_t<F>&,
                                                                    child_context&>>>
  start_function(F&& f)  // NOLINT: implicit, like std::function
      : fn_(std::make_shared<holder<std::decay_t<F>>>(std::forward<F>(f))) {}

  start_function(start_function&&) noexcept = default;
  start_function& operator=(start_function&&) noexcept = default;
  start_function(start_function const& other)
      : fn_(other.fn_ ? other.fn_->copy(other.fn_) : nullptr) {}
  start_function& operator=(start_function const& other) {
    if (this != &other) fn_ = other.fn_ ? other.fn_->copy(other.fn_) : nullptr;
    return *this;
  }
  start_function& operator=(std::nullptr_t) noexcept {
    fn_.reset();
    return *this;
  }

  [[nodiscard]] explicit operator bool() const noexcept { return fn_ != nullptr; }
  friend bool operator==(start_function const& f, std::nullptr_t) noexcept { return !f; }

  /// Calls the callable (which may change its own state). Precondition: not empty.
  start_result operator()(child_context& ctx) const;

 private:
  struct base {
    virtual ~base() = default;
    virtual start_result call(child_context& ctx) = 0;
    /// A copy for a copied spec: a new object if the callable is copyable,
    /// else `self`, shared.
    virtual std::shared_ptr<base> copy(std::shared_ptr<base> const& self) const = 0;
  };
  template <class F>
  struct holder final : base {
    template <class G>
    explicit holder(G&& g) : f(std::forward<G>(g)) {}
    start_result call(child_context& ctx) override { return f(ctx); }
    std::shared_ptr<base> copy(std::shared_ptr<base> const& self) const override {
      if constexpr (std::is_copy_constructible_v<F>) {
        return std::make_shared<holder>(f);
      } else {
        return self;
      }
    }
    F f;
  };
  std::shared_ptr<base> fn_;
};

// start_function starts one incarnation of a child. It
// runs synchronously on the supervisor's executor; it may fail by throwing or
// by returning a start_error. Its returned run or managed work runs on the
// child's executor (see start_result for what each form's end means). It may
// be move-only. A temporary child's start function is released once it has
// started (OTP keeps no start arguments for temporary children): its run must
// not use the start function's captures, so a start function that is itself
// a coroutine lambda takes what it needs as parameters, not captures (C++
// Core Guidelines CP.51), or returns a coroutine it calls with them.
inline start_result start_function::operator()(child_context& ctx) const { return fn_->call(ctx); }

/// Adapts `fn(device&)` or `fn(child_context&)`, returning `awaitable<void>`,
/// `awaitable<boost::system::result<T, E>>` (a managed work) or
/// `start_result`, to a start_function.
template <class Fn>
[[nodiscard]] start_function make_start(Fn fn) {
  if constexpr (std::is_invocable_v<Fn&, child_context&>) {
    return [fn = std::move(fn)](child_context& c) mutable -> start_result { return fn(c); };
  } else {
    static_assert(std::is_invocable_v<Fn&, device&>,
                  "a start function takes backplane::device& or backplane::child_context&");
    return [fn = std::move(fn)](child_context& c) mutable -> start_result { return fn(c.device); };
  }
}

/// One child of a supervisor (OTP's child specification).
struct child_spec {
  std::string id{};  ///< unique within its supervisor, not empty
  start_function start{};
  restart_type restart = restart_type::permanent;
  shutdown_policy shutdown = shutdown_policy::timeout(std::chrono::seconds(5));
  child_kind kind = child_kind::worker;
  std::optional<backoff_policy> backoff{};
  /// Whether this child ending by itself can end its supervisor (OTP's
  /// `significant`; see supervisor_spec::auto_shutdown). Only a transient or
  /// temporary child may be significant, and only under a supervisor whose
  /// auto_shutdown is not `never`.
  bool significant = false;
};

/// A worker child: `worker("db", [](device& d) { return serve(); })` with
/// `serve()` returning `awaitable<result<T, E>>` (a managed work), or a start
/// function returning an `awaitable<void>` run; then adjust the fields
/// (`.restart = ...`) as needed.
template <class Fn>
[[nodiscard]] child_spec worker(std::string id, Fn fn,
                                restart_type restart = restart_type::permanent) {
  child_spec spec;
  spec.id = std::move(id);
  spec.start = make_start(std::move(fn));
  spec.restart = restart;
  return spec;
}

/// Throws std::invalid_argument, saying what is wrong and how to fix it, if
/// `spec` cannot be used (empty id, no start function, negative timeout,
/// nonsensical backoff). OTP's check_childspecs.
void validate(child_spec const& spec);

}  // namespace backplane
