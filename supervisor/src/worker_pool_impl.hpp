#pragma once
// The worker pool's state. Private to src/.
//
// Jobs, queues and accounting sit behind one mutex, so a submitter hands a
// job to a free worker, or queues it, without a hop to any executor, and a
// worker that finishes a job takes the next one without suspending. Workers
// are children of a dynamic supervisor (their restarts, intensity, backoff
// and reports are its), each a coroutine that loops: take a job, run it,
// answer it. A worker with nothing to do waits on a channel of its own (one
// slot, thread-safe), into which a submitter puts a wake-up: one hop, no
// syscall, and a wake-up sent before the worker waits is kept, not lost. The
// pending receive belongs to the execution context (its channel service), so
// a context destroyed under a running pool takes the waiting workers with it.
//
// Nothing is ever answered under the mutex: a submitter's handler may run at
// once and submit again.

#include "dynamic_child.hpp"
#include "dynamic_supervisor_impl.hpp"

#include <backplane/supervisor/worker_pool.hpp>

#include <boost/asio/experimental/concurrent_channel.hpp>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace backplane::detail {

/// One incarnation of one worker.
struct worker_life {
  explicit worker_life(std::shared_ptr<child_incarnation> i)
      : inc(std::move(i)), wake(inc->ctx.executor, 1) {}
  std::shared_ptr<child_incarnation> inc;  // its device, executor and cancellation signal
  /// Idle, it receives here; anyone wakes it with wake_up(), from any thread.
  boost::asio::experimental::concurrent_channel<void(boost::system::error_code)> wake;
  void wake_up() { (void)wake.try_send(boost::system::error_code{}); }  // full: already woken
  // On the worker's executor only.
  std::uint64_t running_seq = 0;  // the job it runs now (0: none)
  bool emitted = false;           // its cancellation signal fired during that job
  // Under the pool's mutex.
  bool exiting = false;  // told to exit (scaled down, or stopping)
};

class worker_pool_impl : public std::enable_shared_from_this<worker_pool_impl> {
 public:
  using stats_handler =
      boost::asio::any_completion_handler<void(boost::system::error_code, pool_stats)>;

  worker_pool_impl(boost::asio::any_io_executor ex, worker_pool_spec spec);

  /// Makes the pool's dynamic supervisor, on its own device or, for a nested
  /// pool, on `nest`'s (then returns the life its parent runs), and starts
  /// the first workers.
  std::optional<start_result> start(std::string path, supervisor_spec const* parent,
                                    child_context* nest);

  void submit(pool_job_ptr job, submit_mode mode);
  void stop(std::chrono::nanoseconds deadline, bool request, stats_handler h);
  [[nodiscard]] pool_stats stats() const;
  /// A submitter cancelled job `sequence` (posted here from its slot).
  void cancel(std::uint64_t sequence);

  [[nodiscard]] boost::asio::any_io_executor const& executor() const noexcept { return ex_; }
  [[nodiscard]] std::shared_ptr<dynamic_supervisor_impl> const& supervisor() const noexcept {
    return sup_;
  }

  // --- for the workers (worker_pool_worker.cpp) ---
  struct next_job {
    pool_job* job = nullptr;
    bool exit = false;
  };
  /// The job a worker runs next, or none (it is then idle: wait for a wake-up).
  next_job take(std::size_t slot, worker_life& life);
  struct finished {
    std::exception_ptr crash;  // the crash the worker dies of, if any
    next_job next;             // taken under the same lock, when one was queued
    bool take_again = false;   // none was: call take() (which marks it idle)
  };
  /// Accounts for the job's end and answers its submitter (or queues it
  /// again under the retry policy), and, unless the worker dies, takes the
  /// next queued job under the same lock. A worker that finds nothing
  /// queued is not marked idle here: it answers first (the answer may
  /// submit again) and then calls take(), so a submitter answered inline
  /// hands its next job to this worker without a wake-up.
  finished finish(std::size_t slot, worker_life& life);
  /// A worker's incarnation has ended (its frame is gone): whatever job it
  /// held is answered.
  void worker_gone(std::size_t slot, worker_life& life);

 private:
  enum class pool_state : std::uint8_t { running, stopping, failed };
  enum class slot_state : std::uint8_t { empty, starting, alive };
  struct slot {
    std::deque<pool_job_ptr> keyed;  // jobs routed here by key
    pool_job_ptr current;            // handed to or run by its worker
    std::shared_ptr<worker_life> life;
    slot_state state = slot_state::empty;
    bool idle = false;
    std::uint64_t idle_gen = 0;
    std::unique_ptr<supervisor_clock::timer> idle_timer;  // beyond `workers`: scale down
  };
  /// What to do once the mutex is released. Allocated only when there is
  /// something to do: a job's usual path (queued, taken, answered) has none.
  struct after_lists {
    std::vector<std::shared_ptr<worker_life>> wake;
    std::vector<std::size_t> start;
    std::vector<std::pair<pool_job_ptr, std::exception_ptr>> answer;
    std::vector<std::pair<std::shared_ptr<worker_life>, std::uint64_t>> cancel;
    bool shut_down = false;
  };
  struct after {
    after() = default;
    after(after const&) = delete;
    after& operator=(after const&) = delete;
    ~after() {
      if (lists) free_lists(lists);
    }
    after_lists* operator->() {
      if (!lists) lists = new after_lists;
      return lists;
    }
    after_lists* lists = nullptr;
  };
  static void free_lists(after_lists* l) noexcept;

  start_function worker_start(std::size_t slot);
  start_result start_worker_incarnation(std::size_t slot, child_context& c);
  void start_workers(std::vector<std::size_t> const& slots);
  /// Gives `job` to its key's worker or a free one, or queues it. Locked.
  void place(pool_job_ptr job, after& out);
  void hand(std::size_t slot, pool_job_ptr job, after& out);
  /// take()'s search for a queued job, locked; false if there is none.
  bool take_queued(std::size_t i, next_job& next, after& out);
  void promote_waiting(after& out);
  void grow(after& out);
  void arm_idle_timer(std::size_t slot);
  /// Answers every queued and waiting job with `e`. Locked.
  void sweep(std::exception_ptr const& e, after& out);
  void check_drained(after& out);
  void kill_worker(std::size_t slot, std::shared_ptr<worker_life> const& life);
  void on_give_up();
  void on_stop();
  void on_end();
  void deadline_passed();
  /// Does what `out` holds, outside the mutex.
  void run(after& out) {
    if (out.lists) run_lists(*out.lists);
  }
  void run_lists(after_lists& out);
  [[nodiscard]] pool_stats stats_locked() const;

  boost::asio::any_io_executor ex_;
  worker_pool_spec spec_;
  std::size_t max_workers_;
  std::shared_ptr<supervisor_clock> clock_;
  std::shared_ptr<dynamic_supervisor_impl> sup_;

  mutable std::mutex mutex_;
  pool_state state_ = pool_state::running;
  std::vector<slot> slots_;
  std::deque<pool_job_ptr> shared_;   // unkeyed jobs
  std::deque<pool_job_ptr> waiting_;  // submitters waiting for room
  std::vector<std::size_t> idle_;     // idle workers' slots
  std::size_t in_queues_ = 0;         // against queue_capacity
  std::unordered_map<std::uint64_t, pool_job*> cancellable_;
  pool_stats stats_;
  std::size_t alive_ = 0;
  bool shutdown_sent_ = false;
  bool ended_ = false;  // its supervisor has ended
  std::unique_ptr<supervisor_clock::timer> deadline_timer_;
  std::vector<stats_handler> stop_waiters_;
  std::uint64_t next_sequence_ = 0;  // under the mutex
};

}  // namespace backplane::detail
