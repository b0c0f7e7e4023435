#pragma once
// worker_pool: restartable workers under a dynamic supervisor, taking jobs from
// a bounded queue; every job submitted is answered exactly once.

#include <backplane/device_id.hpp>
#include <backplane/line.hpp>
#include <backplane/supervisor/child_spec.hpp>
#include <backplane/supervisor/clock.hpp>
#include <backplane/supervisor/detail/reply.hpp>
#include <backplane/supervisor/events.hpp>
#include <backplane/supervisor/pool_errors.hpp>
#include <backplane/supervisor/supervisor.hpp>
#include <backplane/supervisor/supervisor_spec.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/recycling_allocator.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <spdlog/fwd.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace backplane {

/// Whether a crashed job is run again. Only jobs submitted as `idempotent(fn)`
/// are, and only when they crashed (threw, or their worker died under them):
/// an error the job returned is its answer, never retried.
struct retry_policy {
  std::uint32_t max_attempts = 1;  ///< attempts per idempotent job; 1: never retried
};

/// A pool's accounting. At every moment (every snapshot `stats()` returns)
/// `submitted == completed + failed + crashed + cancelled + queued + running`:
/// nothing is lost.
struct pool_stats {
  std::uint64_t submitted = 0;  ///< accepted by async_submit/try_submit
  std::uint64_t completed = 0;  ///< answered with the job's value
  std::uint64_t failed = 0;     ///< answered with the error the job returned
  std::uint64_t crashed = 0;    ///< answered with job_crashed
  /// Answered with operation_aborted (cancelled, or cut off by a stop's
  /// deadline) or pool_errc::pool_failed (the pool gave up).
  std::uint64_t cancelled = 0;
  std::uint64_t queued = 0;    ///< waiting for a worker, including submitters waiting for room
  std::uint64_t running = 0;   ///< handed to a worker and not answered yet
  std::uint64_t rejected = 0;  ///< refused at once (full, stopping): not submitted
  std::uint64_t retried = 0;   ///< crashed attempts run again under the retry policy
  std::uint64_t restarts = 0;  ///< worker restarts
  std::size_t workers_alive = 0;
  std::size_t queue_high_water = 0;  ///< most jobs ever queued at once (<= queue_capacity)
};

/// A pool's declaration.
///
/// Scaling (with `max_workers` above `workers`): a job that finds no free
/// worker while fewer than `max_workers` run starts one more worker; a worker
/// beyond the first `workers` that has waited `idle_timeout` without a job
/// exits. Keyed jobs go to the first `workers` workers only, which never
/// exit, so a key keeps its worker.
struct worker_pool_spec {
  std::string name = "pool";  ///< last element of the supervisor path
  std::size_t workers = 4;    ///< the pool's size, or its minimum with max_workers
  std::optional<std::size_t> max_workers{};
  std::chrono::nanoseconds idle_timeout = std::chrono::seconds(10);
  std::size_t queue_capacity = 1024;  ///< queued jobs at most; async_submit waits beyond
  /// Restart intensity over worker crashes, as a supervisor's; beyond it the
  /// pool fails: every queued and running job completes with pool_failed and
  /// the pool's device disconnects with a fault.
  std::uint32_t max_restarts = 3;
  std::chrono::nanoseconds period = std::chrono::seconds(5);
  std::optional<backoff_policy> backoff{};
  retry_policy retry{};

  // --- options, as supervisor_spec's (inherited from a parent supervisor when empty) ---
  std::shared_ptr<supervisor_clock> clock{};
  std::shared_ptr<spdlog::logger> logger{};
  std::optional<report_format> format{};
  /// Every event of the pool's supervisor (worker crashes carry the job's
  /// identity in their reason), with the pool's stats at that moment. Runs on
  /// the pool's executor.
  std::function<void(supervisor_event const&, pool_stats const&)> observer{};
  std::optional<bool> child_strands{};
};

/// Throws std::invalid_argument saying what is wrong and what to do: zero
/// workers, zero queue capacity, max_workers below workers, max_attempts of 0,
/// and what validate(dynamic_supervisor_spec) checks.
void validate(worker_pool_spec const& spec);

/// A job that may run more than once: `fn()` makes a fresh awaitable for each
/// attempt. See retry_policy.
template <class Fn>
struct idempotent_job {
  Fn fn;
};
template <class Fn>
[[nodiscard]] idempotent_job<std::decay_t<Fn>> idempotent(Fn&& fn) {
  return {std::forward<Fn>(fn)};
}

/// A routing key: jobs with equal keys run on the same worker, in submission
/// order, so a worker may keep per-key state.
class job_key {
 public:
  template <class Integer, std::enable_if_t<std::is_integral_v<Integer>, int> = 0>
  job_key(Integer k)  // NOLINT: implicit by design
      : hash_(static_cast<std::uint64_t>(k)), number_(true) {}
  job_key(std::string_view k)  // NOLINT
      : hash_(std::hash<std::string_view>{}(k)), text_(k), number_(false) {}
  job_key(char const* k) : job_key(std::string_view(k)) {}  // NOLINT
  [[nodiscard]] std::uint64_t hash() const noexcept { return hash_; }
  /// As reports show it.
  [[nodiscard]] std::string text() const { return number_ ? std::to_string(hash_) : text_; }

 private:
  std::uint64_t hash_;
  std::string text_;
  bool number_;
};

namespace detail {

class worker_pool_impl;

/// Not API. A job with its type erased, as the compiled pool sees it.
class pool_job {
 public:
  /// Destroys the job and frees its memory (recycled per thread, as Asio
  /// recycles its handlers': a job record is allocated once per submission).
  virtual void destroy() noexcept = 0;
  /// Runs one attempt and records how it ended (below). What the job throws
  /// is caught and described here, in the frame that catches it: describing
  /// it later would throw it once more (an unwind costs microseconds).
  virtual boost::asio::awaitable<void> attempt() = 0;
  /// Answers the submitter, once: with the last attempt's result when `e`
  /// is null, otherwise with `e`.
  virtual void complete(std::exception_ptr e) = 0;
  [[nodiscard]] virtual bool idempotent() const noexcept = 0;

  boost::asio::cancellation_slot slot;  // the submitter's
  std::optional<job_key> key;
  // The pool's bookkeeping.
  std::uint64_t sequence = 0;
  std::uint32_t attempts = 0;
  bool cancel_requested = false;
  // How the last attempt ended: it threw `thrown` ("type: what()" in
  // `thrown_text`), or returned, with an error if `failed`.
  std::exception_ptr thrown;
  std::string thrown_text;
  bool failed = false;

 protected:
  /// In a catch block: records the exception being handled (`e` if it is a
  /// std::exception). May throw std::bad_alloc.
  void caught(std::exception const* e);

  pool_job() = default;
  ~pool_job() = default;  // through destroy() only
  pool_job(pool_job const&) = delete;
  pool_job& operator=(pool_job const&) = delete;
};

/// Not API. Owns a pool_job: destroy() on release.
struct pool_job_deleter {
  void operator()(pool_job* j) const noexcept { j->destroy(); }
};
using pool_job_ptr = std::unique_ptr<pool_job, pool_job_deleter>;

template <class Job>
struct job_traits;
template <class T, class E>
struct job_traits<boost::asio::awaitable<boost::system::result<T, E>>> {
  using result_type = boost::system::result<T, E>;
  static constexpr bool idempotent = false;
};
template <class Fn>
struct job_traits<idempotent_job<Fn>> : job_traits<std::decay_t<decltype(std::declval<Fn&>()())>> {
  static constexpr bool idempotent = true;
};

template <class Job, class Handler>
class pool_job_of final : public pool_job {
 public:
  using result_type = typename job_traits<Job>::result_type;
  static_assert(std::is_default_constructible_v<result_type>,
                "backplane: a job returning boost::system::result<T, E> needs a default-"
                "constructible T (a job that did not answer completes with an empty value beside "
                "the exception); return result<void, E> if the value is not needed");
  using target_executor = boost::asio::associated_executor_t<Handler, boost::asio::any_io_executor>;

  /// Allocated from the thread's recycling cache (Asio's, as its handlers):
  /// a submitter that submits again reuses the record its last job freed.
  static pool_job_ptr make(Job job, Handler h, boost::asio::any_io_executor const& fallback) {
    allocator a;
    pool_job_of* p = a.allocate(1);
    try {
      ::new (static_cast<void*>(p)) pool_job_of(std::move(job), std::move(h), fallback);
    } catch (...) {
      a.deallocate(p, 1);
      throw;
    }
    return pool_job_ptr(p);
  }

  void destroy() noexcept override {
    allocator a;
    this->~pool_job_of();
    a.deallocate(this, 1);
  }

  boost::asio::awaitable<void> attempt() override {
    thrown = nullptr;
    failed = false;
    try {
      if constexpr (job_traits<Job>::idempotent) {
        result_.emplace(co_await job_.fn());
      } else {
        result_.emplace(co_await std::move(job_));
      }
      failed = result_->has_error();
    } catch (std::exception const& e) {
      caught(&e);
    } catch (...) {
      caught(nullptr);
    }
  }

  void complete(std::exception_ptr e) override {
    result_type r = e || !result_ ? result_type() : std::move(*result_);
    auto ex = work_.get_executor();
    // On the submitter's executor, where its cancellation slot is used: the
    // slot is cleared there before the handler runs. Already on it (a worker
    // sharing the submitter's thread or strand), the handler runs at once, as
    // dispatch would run it, without dispatch's wrapping and fence.
    if constexpr (requires { ex.running_in_this_thread(); }) {
      if (ex.running_in_this_thread()) {
        if (slot.is_connected()) slot.clear();
        Handler h = std::move(handler_);
        work_.reset();
        std::move(h)(std::move(e), std::move(r));
        return;
      }
    }
    boost::asio::dispatch(boost::asio::bind_executor(
        ex, [h = std::move(handler_), s = slot, e, r = std::move(r)]() mutable {
          if (s.is_connected()) s.clear();
          std::move(h)(e, std::move(r));
        }));
    work_.reset();
  }

  [[nodiscard]] bool idempotent() const noexcept override { return job_traits<Job>::idempotent; }

 private:
  using allocator = boost::asio::recycling_allocator<pool_job_of>;

  pool_job_of(Job job, Handler h, boost::asio::any_io_executor const& fallback)
      : job_(std::move(job)),
        work_(boost::asio::make_work_guard(boost::asio::get_associated_executor(h, fallback))),
        handler_(std::move(h)) {
    slot = boost::asio::get_associated_cancellation_slot(handler_);
  }
  ~pool_job_of() = default;

  Job job_;
  std::optional<result_type> result_;
  boost::asio::executor_work_guard<target_executor> work_;
  Handler handler_;
};

enum class submit_mode : std::uint8_t { wait, try_once };

}  // namespace detail

/// A handle to a running pool. Copyable; the pool runs until stopped
/// (`async_stop`, a shutdown message to its line, its parent) or until it
/// fails, whether or not handles remain.
///
/// Jobs are awaitables returning `boost::system::result<T, E>` (the shape of
/// a managed work), or `idempotent(fn)` with `fn()` making one. Each is
/// answered exactly once, with the completion signature
/// `void(std::exception_ptr, boost::system::result<T, E>)`, co_spawn's shape:
///
/// - the job returned: null, and its result (its value, or its error: the
///   worker stays);
/// - the job threw, or its worker died under it: a backplane::job_crashed
///   (describe() reads "backplane::job_crashed: job #17 (key 3) crashed:
///   std::runtime_error: boom"), and the worker is restarted under the
///   pool's intensity and backoff;
/// - otherwise a boost::system::system_error whose code says why:
///   operation_aborted (cancelled, or cut off by a stop's deadline),
///   pool_errc::stopping, pool_errc::queue_full (try_submit only),
///   pool_errc::pool_failed.
///
/// With `use_awaitable` the result comes back and the exception is thrown;
/// `as_tuple(use_awaitable)` gives both.
///
/// Thread-safety: every member may be called from any thread.
class worker_pool {
 public:
  using executor_type = boost::asio::any_io_executor;

  /// Validates `spec` (throws std::invalid_argument) and starts the pool and
  /// its workers on `ex` (a strand on a multi-threaded context; the workers
  /// get strands of their own with child_strands).
  [[nodiscard]] static worker_pool start(executor_type ex, worker_pool_spec spec);

  /// The pool as a child of a supervisor_spec (kind `supervisor`, shutdown
  /// `infinity`): its parent stops it (draining nothing: queued jobs complete
  /// with operation_aborted, running ones are cancelled) and hears it fail.
  /// `on_start` receives the handle each time it starts.
  [[nodiscard]] static child_spec as_child(std::string id, worker_pool_spec spec,
                                           std::function<void(worker_pool)> on_start = {});

  [[nodiscard]] device_id id() const;
  [[nodiscard]] backplane::line line() const;
  [[nodiscard]] std::string const& path() const;
  /// A consistent snapshot (the accounting identity holds in it).
  [[nodiscard]] pool_stats stats() const;

  /// Submits `job`; waits (suspends the submitter, never blocks a thread)
  /// while the queue is full. Unkeyed jobs go to whichever worker is free.
  ///
  /// @par Completion Signature
  /// `void(std::exception_ptr, boost::system::result<T, E>)` (see the class).
  ///
  /// @par Per-Operation Cancellation
  /// terminal, partial and total, emitted from the submitter's executor: a
  /// queued job is removed, a running one is cancelled (what it awaits
  /// completes with operation_aborted); either way the submitter is answered
  /// once, with operation_aborted, or with the job's own answer if it ended
  /// first.
  template <class Job, class Token>
  auto async_submit(Job job, Token&& token) {
    return initiate<Job>(std::nullopt, detail::submit_mode::wait, std::move(job),
                         std::forward<Token>(token));
  }
  /// Submits `job` to the worker that `key` maps to, behind the jobs
  /// submitted earlier with an equal key. Otherwise as async_submit.
  template <class Job, class Token>
  auto async_submit(job_key key, Job job, Token&& token) {
    return initiate<Job>(std::move(key), detail::submit_mode::wait, std::move(job),
                         std::forward<Token>(token));
  }
  /// As async_submit, but a full queue (or a stopping pool) answers at once
  /// with pool_errc::queue_full (pool_errc::stopping) and the job never runs.
  template <class Job, class Token>
  auto try_submit(Job job, Token&& token) {
    return initiate<Job>(std::nullopt, detail::submit_mode::try_once, std::move(job),
                         std::forward<Token>(token));
  }
  template <class Job, class Token>
  auto try_submit(job_key key, Job job, Token&& token) {
    return initiate<Job>(std::move(key), detail::submit_mode::try_once, std::move(job),
                         std::forward<Token>(token));
  }

  /// Graceful stop: stops accepting jobs, lets the queued ones run, and once
  /// `deadline` has passed (on the pool's clock) cancels what is left, each
  /// such job answered with operation_aborted; then stops the workers and
  /// disconnects the pool's device cleanly. Completes with the final stats
  /// once all is done (at once if the pool had ended).
  /// @par Completion Signature `void(boost::system::error_code, pool_stats)`
  template <class Token>
  auto async_stop(std::chrono::nanoseconds deadline, Token&& token) {
    using sig = void(boost::system::error_code, pool_stats);
    return boost::asio::async_initiate<Token, sig>(
        [impl = impl_](auto h, std::chrono::nanoseconds d) {
          stop(impl, d, true, detail::erase_reply<sig>(std::move(h), executor_of(impl)));
        },
        token, deadline);
  }
  /// Completes when the pool has ended (stopped or failed), with its stats.
  /// @par Completion Signature `void(boost::system::error_code, pool_stats)`
  template <class Token>
  auto async_wait(Token&& token) {
    using sig = void(boost::system::error_code, pool_stats);
    return boost::asio::async_initiate<Token, sig>(
        [impl = impl_](auto h) {
          stop(impl, {}, false, detail::erase_reply<sig>(std::move(h), executor_of(impl)));
        },
        token);
  }

 private:
  using impl_ptr = std::shared_ptr<detail::worker_pool_impl>;
  explicit worker_pool(impl_ptr impl) noexcept : impl_(std::move(impl)) {}

  template <class Job, class Token>
  auto initiate(std::optional<job_key> key, detail::submit_mode mode, Job job, Token&& token) {
    using result_type = typename detail::job_traits<Job>::result_type;
    using sig = void(std::exception_ptr, result_type);
    return boost::asio::async_initiate<Token, sig>(
        [impl = impl_, mode](auto h, Job j, std::optional<job_key> k) {
          using handler = std::decay_t<decltype(h)>;
          detail::pool_job_ptr p = detail::pool_job_of<Job, handler>::make(
              std::move(j), std::move(h), executor_of(impl));
          p->key = std::move(k);
          submit(impl, std::move(p), mode);
        },
        token, std::move(job), std::move(key));
  }

  static executor_type const& executor_of(impl_ptr const& impl);
  static void submit(impl_ptr const& impl, detail::pool_job_ptr job, detail::submit_mode mode);
  static void stop(
      impl_ptr const& impl, std::chrono::nanoseconds deadline, bool request,
      boost::asio::any_completion_handler<void(boost::system::error_code, pool_stats)>);

  impl_ptr impl_;
};

}  // namespace backplane
