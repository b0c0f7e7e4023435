#include "worker_pool_impl.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>

namespace asio = boost::asio;

namespace backplane::detail {

namespace {

std::exception_ptr error_of(boost::system::error_code ec) {
  return std::make_exception_ptr(boost::system::system_error(ec));
}

/// Cancels one job from its submitter's cancellation slot: posted to the
/// pool, so that the submitter is never answered inside its own emit.
struct job_canceller {
  // A constructor, not an aggregate: cancellation_slot::emplace constructs it with
  // parentheses, which clang 14 does not accept for an aggregate (C++20's P0960).
  job_canceller(std::weak_ptr<worker_pool_impl> p, asio::any_io_executor e, std::uint64_t s)
      : pool(std::move(p)), ex(std::move(e)), sequence(s) {}
  std::weak_ptr<worker_pool_impl> pool;
  asio::any_io_executor ex;
  std::uint64_t sequence;
  void operator()(asio::cancellation_type type) const {
    if (type == asio::cancellation_type::none) return;
    asio::post(ex, [pool = pool, sequence = sequence] {
      if (auto p = pool.lock()) p->cancel(sequence);
    });
  }
};

}  // namespace

worker_pool_impl::worker_pool_impl(asio::any_io_executor ex, worker_pool_spec spec)
    : ex_(std::move(ex)),
      spec_(std::move(spec)),
      max_workers_(spec_.max_workers.value_or(spec_.workers)) {
  slots_.resize(max_workers_);
}

std::optional<start_result> worker_pool_impl::start(std::string path, supervisor_spec const* parent,
                                                    child_context* nest) {
  dynamic_supervisor_spec d;
  d.name = spec_.name;
  d.max_restarts = spec_.max_restarts;
  d.period = spec_.period;
  d.max_children = max_workers_;
  d.child_name = "worker";
  // A crashed worker comes back; one told to exit (scaled down) does not.
  d.restart = restart_type::transient;
  // The pool drains its jobs itself before it stops its workers: by then a
  // worker has nothing to finish.
  d.shutdown = shutdown_policy::brutal();
  d.backoff = spec_.backoff;
  d.clock = spec_.clock;
  d.logger = spec_.logger;
  d.format = spec_.format;
  d.child_strands = spec_.child_strands;
  if (spec_.observer) {
    std::weak_ptr<worker_pool_impl> weak = weak_from_this();
    d.observer = [weak, obs = spec_.observer](supervisor_event const& e) {
      auto self = weak.lock();
      obs(e, self ? self->stats() : pool_stats{});
    };
  }
  auto self = shared_from_this();
  sup_ = std::make_shared<dynamic_supervisor_impl>(ex_, std::move(d), std::move(path), parent);
  clock_ = sup_->clock();
  // The hooks hold the pool: a pool whose handles are all gone runs on until
  // its supervisor ends (the supervisor drops them then).
  sup_->on_give_up = [self] { self->on_give_up(); };
  sup_->on_stop = [self] { self->on_stop(); };
  sup_->on_end = [self] { self->on_end(); };
  std::optional<start_result> life;
  if (nest) {
    sup_->adopt_device(std::move(nest->device));
    if (nest->on_kill) *nest->on_kill = [sup = sup_] { sup->kill_all(); };
    life.emplace(nested_dynamic_life(sup_, &nest->device));
  } else {
    asio::co_spawn(ex_, sup_->run(sup_), [sup = sup_](std::exception_ptr e) {
      if (e) sup->crashed(e);  // its own bookkeeping failed: a fault, never silence
    });
  }
  std::vector<std::size_t> first;
  {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < spec_.workers; ++i) {
      slots_[i].state = slot_state::starting;
      first.push_back(i);
    }
  }
  start_workers(first);
  return life;
}

// ------------------------------------------------------------- workers ----

start_function worker_pool_impl::worker_start(std::size_t slot) {
  std::weak_ptr<worker_pool_impl> weak = weak_from_this();
  return [weak, slot](child_context& c) -> start_result {
    auto self = weak.lock();
    if (!self) return start_error{"the pool is gone"};
    return self->start_worker_incarnation(slot, c);
  };
}

void worker_pool_impl::start_workers(std::vector<std::size_t> const& slots) {
  if (slots.empty()) return;
  // On the supervisor's executor, where its API runs.
  asio::dispatch(sup_->executor(), [self = shared_from_this(), slots] {
    for (std::size_t i : slots) {
      self->sup_->api_start_child(self->worker_start(i),
                                  [self, i](boost::system::error_code ec, device_id) {
                                    if (!ec) return;
                                    std::lock_guard lock(self->mutex_);
                                    if (self->slots_[i].state == slot_state::starting)
                                      self->slots_[i].state = slot_state::empty;
                                  });
    }
  });
}

void worker_pool_impl::kill_worker(std::size_t i, std::shared_ptr<worker_life> const& life) {
  // On the worker's executor (the supervisor's on_kill).
  bool emit = false;
  {
    std::lock_guard lock(mutex_);
    slot& w = slots_[i];
    if (w.life != life) return;
    life->exiting = true;
    emit = life->running_seq != 0;
  }
  if (emit) {
    life->emitted = true;
    life->inc->cancel.emit(asio::cancellation_type::terminal);
  } else {
    life->wake_up();
  }
}

// ---------------------------------------------------------- submitting ----

void worker_pool_impl::submit(pool_job_ptr job, submit_mode mode) {
  std::exception_ptr refused;
  after out;
  {
    std::lock_guard lock(mutex_);
    job->sequence = ++next_sequence_;
    if (state_ != pool_state::running) {
      ++stats_.rejected;
      refused = error_of(make_error_code(state_ == pool_state::failed ? pool_errc::pool_failed
                                                                      : pool_errc::stopping));
    } else if (mode == submit_mode::try_once &&
               (!waiting_.empty() || in_queues_ >= spec_.queue_capacity)) {
      ++stats_.rejected;
      refused = error_of(make_error_code(pool_errc::queue_full));
    } else {
      ++stats_.submitted;
      ++stats_.queued;
      if (job->slot.is_connected()) {
        // Installed here, in the submitter's initiating call, before any
        // other thread can answer the job.
        cancellable_[job->sequence] = job.get();
        job->slot.template emplace<job_canceller>(weak_from_this(), ex_, job->sequence);
      }
      bool const full = !waiting_.empty() || in_queues_ >= spec_.queue_capacity;
      // An unkeyed job promises no order, so a free worker takes it even when
      // the queue is full (of other workers' keyed jobs).
      if (full && (job->key || idle_.empty())) {
        waiting_.push_back(std::move(job));
      } else {
        place(std::move(job), out);
      }
    }
  }
  if (refused) {
    // Posted, so never inside the initiating call.
    asio::post(ex_,
               [j = std::shared_ptr<pool_job>(std::move(job)), refused] { j->complete(refused); });
    return;
  }
  run(out);
}

void worker_pool_impl::place(pool_job_ptr job, after& out) {
  if (job->key) {
    std::size_t const i = job->key->hash() % spec_.workers;
    slot& w = slots_[i];
    if (w.idle && w.keyed.empty() && !w.current) return hand(i, std::move(job), out);
    w.keyed.push_back(std::move(job));
  } else {
    if (!idle_.empty()) return hand(idle_.back(), std::move(job), out);
    shared_.push_back(std::move(job));
    grow(out);
  }
  ++in_queues_;
  stats_.queue_high_water = std::max(stats_.queue_high_water, in_queues_);
}

void worker_pool_impl::hand(std::size_t i, pool_job_ptr job, after& out) {
  slot& w = slots_[i];
  w.idle = false;
  ++w.idle_gen;
  w.idle_timer.reset();
  idle_.erase(std::find(idle_.begin(), idle_.end(), i));
  w.current = std::move(job);
  --stats_.queued;
  ++stats_.running;
  out->wake.push_back(w.life);
}

void worker_pool_impl::promote_waiting(after& out) {
  while (!waiting_.empty() && in_queues_ < spec_.queue_capacity) {
    auto j = std::move(waiting_.front());
    waiting_.pop_front();
    place(std::move(j), out);
  }
}

void worker_pool_impl::grow(after& out) {
  if (max_workers_ <= spec_.workers || !idle_.empty() || shared_.empty()) return;
  std::size_t busy = 0;
  std::size_t free_slot = max_workers_;
  for (std::size_t i = 0; i < max_workers_; ++i) {
    if (slots_[i].state != slot_state::empty) {
      ++busy;
    } else if (i >= spec_.workers && free_slot == max_workers_) {
      free_slot = i;
    }
  }
  if (busy >= max_workers_ || free_slot == max_workers_) return;
  slots_[free_slot].state = slot_state::starting;
  out->start.push_back(free_slot);
}

void worker_pool_impl::arm_idle_timer(std::size_t i) {
  std::weak_ptr<worker_pool_impl> weak = weak_from_this();
  std::uint64_t const gen = slots_[i].idle_gen;
  slots_[i].idle_timer = clock_->schedule(clock_->now() + spec_.idle_timeout, ex_, [weak, i, gen] {
    auto self = weak.lock();
    if (!self) return;
    after out;
    {
      std::lock_guard lock(self->mutex_);
      slot& w = self->slots_[i];
      if (!w.idle || w.idle_gen != gen || !w.life) return;
      w.life->exiting = true;
      out->wake.push_back(w.life);
    }
    self->run(out);
  });
}

// ------------------------------------------------------------- running ----

worker_pool_impl::next_job worker_pool_impl::take(std::size_t i, worker_life& life) {
  after out;
  next_job next;
  {
    std::lock_guard lock(mutex_);
    slot& w = slots_[i];
    if (w.life.get() != &life || life.exiting) {
      next.exit = true;
    } else if (w.current) {
      next.job = w.current.get();  // handed while it was idle
    } else if (!take_queued(i, next, out) && !w.idle) {
      w.idle = true;
      ++w.idle_gen;
      idle_.push_back(i);
      if (i >= spec_.workers) arm_idle_timer(i);
    }
  }
  run(out);
  return next;
}

bool worker_pool_impl::take_queued(std::size_t i, next_job& next, after& out) {
  slot& w = slots_[i];
  pool_job_ptr j;
  if (!w.keyed.empty()) {
    j = std::move(w.keyed.front());
    w.keyed.pop_front();
  } else if (!shared_.empty()) {
    j = std::move(shared_.front());
    shared_.pop_front();
  }
  if (j) {
    --in_queues_;
    --stats_.queued;
    ++stats_.running;
    w.current = std::move(j);
    next.job = w.current.get();
    if (!waiting_.empty()) promote_waiting(out);
    return true;
  }
  if (waiting_.empty()) return false;
  auto it = std::find_if(waiting_.begin(), waiting_.end(), [&](auto const& q) {
    return !q->key || q->key->hash() % spec_.workers == i;
  });
  if (it == waiting_.end()) return false;
  // The queue is full of other workers' keyed jobs: this worker takes the
  // first waiting job it may run (a keyed one behind all of its key's queued
  // jobs, since waiting jobs enter the queue in order).
  --stats_.queued;
  ++stats_.running;
  w.current = std::move(*it);
  waiting_.erase(it);
  next.job = w.current.get();
  return true;
}

worker_pool_impl::finished worker_pool_impl::finish(std::size_t i, worker_life& life) {
  pool_job_ptr j;
  std::exception_ptr answer;
  std::exception_ptr crash;
  bool answered = true;
  finished out_next;
  after out;
  {
    std::lock_guard lock(mutex_);
    slot& w = slots_[i];
    j = std::move(w.current);
    --stats_.running;
    bool const killed = life.inc->killed.load(std::memory_order_relaxed);
    if (!j->thrown) {
      ++(j->failed ? stats_.failed : stats_.completed);
    } else if (j->cancel_requested || killed) {
      answer = error_of(state_ == pool_state::failed ? make_error_code(pool_errc::pool_failed)
                                                     : asio::error::operation_aborted);
      ++stats_.cancelled;
    } else {
      std::optional<std::string> key;
      if (j->key) key = j->key->text();
      crash = std::make_exception_ptr(
          job_crashed(j->sequence, std::move(key), j->thrown, j->thrown_text));
      ++j->attempts;
      if (j->idempotent() && j->attempts < spec_.retry.max_attempts &&
          state_ != pool_state::failed) {
        // Back at the head of its queue: a key keeps its order.
        ++stats_.retried;
        ++stats_.queued;
        ++in_queues_;
        (j->key ? w.keyed : shared_).push_front(std::move(j));
        answered = false;
      } else {
        answer = crash;
        ++stats_.crashed;
      }
    }
    if (answered && j->slot.is_connected()) cancellable_.erase(j->sequence);
    check_drained(out);
    // The next job, under the same lock, for a worker that lives on (take()'s
    // rules: one told to exit takes none).
    if (!crash) {
      if (w.life.get() != &life || life.exiting) {
        out_next.next.exit = true;
      } else if (!take_queued(i, out_next.next, out)) {
        out_next.take_again = true;
      }
    }
  }
  run(out);
  if (answered) j->complete(answer);
  out_next.crash = std::move(crash);
  return out_next;
}

void worker_pool_impl::worker_gone(std::size_t i, worker_life& life) {
  pool_job_ptr j;
  std::exception_ptr answer;
  after out;
  {
    std::lock_guard lock(mutex_);
    slot& w = slots_[i];
    if (w.life.get() != &life) return;
    bool const scaled_down = life.exiting && state_ == pool_state::running;
    w.life.reset();
    --alive_;
    if (w.idle) {
      w.idle = false;
      idle_.erase(std::find(idle_.begin(), idle_.end(), i));
    }
    ++w.idle_gen;
    w.idle_timer.reset();
    // A crashed worker waits for its restart; one that exited frees its slot.
    w.state = scaled_down ? slot_state::empty : slot_state::starting;
    if (w.current) {
      // Handed to it, or run by it when it died (a kill, a context torn down).
      j = std::move(w.current);
      --stats_.running;
      bool const killed = life.inc->killed.load(std::memory_order_relaxed);
      if (state_ == pool_state::failed) {
        answer = error_of(make_error_code(pool_errc::pool_failed));
        ++stats_.cancelled;
      } else if (killed || j->cancel_requested || state_ != pool_state::running) {
        answer = error_of(asio::error::operation_aborted);
        ++stats_.cancelled;
      } else {
        std::optional<std::string> key;
        if (j->key) key = j->key->text();
        answer = std::make_exception_ptr(
            job_crashed(j->sequence, std::move(key), nullptr, "its worker died under it"));
        ++stats_.crashed;
      }
      cancellable_.erase(j->sequence);
    }
    check_drained(out);
  }
  run(out);
  if (j) j->complete(answer);
}

// -------------------------------------------------------- cancellation ----

void worker_pool_impl::cancel(std::uint64_t sequence) {
  pool_job_ptr j;
  after out;
  {
    std::lock_guard lock(mutex_);
    auto it = cancellable_.find(sequence);
    if (it == cancellable_.end()) return;  // answered already
    pool_job* p = it->second;
    auto take_from = [&](std::deque<pool_job_ptr>& q) {
      auto found = std::find_if(q.begin(), q.end(), [p](auto const& e) { return e.get() == p; });
      if (found == q.end()) return false;
      j = std::move(*found);
      q.erase(found);
      return true;
    };
    if (take_from(waiting_)) {
      --stats_.queued;
    } else if (take_from(shared_) ||
               (p->key && take_from(slots_[p->key->hash() % spec_.workers].keyed))) {
      --stats_.queued;
      --in_queues_;
      promote_waiting(out);
    } else {
      // Running (or handed to a worker): cancelled there, answered when it ends.
      p->cancel_requested = true;
      for (auto& w : slots_) {
        if (w.current.get() == p && w.life) out->cancel.emplace_back(w.life, sequence);
      }
    }
    if (j) {
      cancellable_.erase(it);
      ++stats_.cancelled;
      check_drained(out);
    }
  }
  run(out);
  if (j) j->complete(error_of(asio::error::operation_aborted));
}

// ------------------------------------------------------------ stopping ----

void worker_pool_impl::sweep(std::exception_ptr const& e, after& out) {
  auto drain = [&](std::deque<pool_job_ptr>& q) {
    for (auto& j : q) {
      cancellable_.erase(j->sequence);
      --stats_.queued;
      ++stats_.cancelled;
      out->answer.emplace_back(std::move(j), e);
    }
    q.clear();
  };
  drain(waiting_);
  drain(shared_);
  for (auto& w : slots_) drain(w.keyed);
  in_queues_ = 0;
}

void worker_pool_impl::check_drained(after& out) {
  if (state_ != pool_state::stopping || shutdown_sent_) return;
  if (stats_.queued != 0 || stats_.running != 0) return;
  shutdown_sent_ = true;
  out->shut_down = true;
}

void worker_pool_impl::stop(std::chrono::nanoseconds deadline, bool request, stats_handler h) {
  after out;
  {
    std::lock_guard lock(mutex_);
    if (ended_) {
      pool_stats const s = stats_locked();
      asio::post(ex_,
                 [h = std::move(h), s]() mutable { std::move(h)(boost::system::error_code{}, s); });
      return;
    }
    stop_waiters_.push_back(std::move(h));
    if (!request || state_ != pool_state::running) return;
    state_ = pool_state::stopping;
    std::weak_ptr<worker_pool_impl> weak = weak_from_this();
    deadline_timer_ = clock_->schedule(clock_->now() + deadline, ex_, [weak] {
      if (auto self = weak.lock()) self->deadline_passed();
    });
    check_drained(out);
  }
  run(out);
}

void worker_pool_impl::deadline_passed() {
  after out;
  {
    std::lock_guard lock(mutex_);
    if (state_ != pool_state::stopping) return;
    sweep(error_of(asio::error::operation_aborted), out);
    for (auto& w : slots_) {
      if (w.current && w.life) {
        w.current->cancel_requested = true;
        out->cancel.emplace_back(w.life, w.current->sequence);
      }
    }
    check_drained(out);
  }
  run(out);
}

void worker_pool_impl::on_give_up() {
  after out;
  {
    std::lock_guard lock(mutex_);
    state_ = pool_state::failed;
    sweep(error_of(make_error_code(pool_errc::pool_failed)), out);
  }
  run(out);
}

void worker_pool_impl::on_stop() {
  // The supervisor stops: asked by the pool once drained, or from outside
  // (a shutdown message, its parent) with no drain: what is queued is cut off.
  after out;
  {
    std::lock_guard lock(mutex_);
    if (state_ == pool_state::running) state_ = pool_state::stopping;
    shutdown_sent_ = true;
    if (state_ == pool_state::stopping) sweep(error_of(asio::error::operation_aborted), out);
  }
  run(out);
}

void worker_pool_impl::on_end() {
  std::vector<stats_handler> waiters;
  pool_stats s;
  {
    std::lock_guard lock(mutex_);
    ended_ = true;
    if (state_ == pool_state::running) state_ = pool_state::stopping;
    deadline_timer_.reset();
    for (auto& w : slots_) w.idle_timer.reset();
    waiters = std::move(stop_waiters_);
    s = stats_locked();
  }
  for (auto& h : waiters) {
    asio::post(ex_,
               [h = std::move(h), s]() mutable { std::move(h)(boost::system::error_code{}, s); });
  }
}

void worker_pool_impl::free_lists(after_lists* l) noexcept { delete l; }

void worker_pool_impl::run_lists(after_lists& out) {
  for (auto& life : out.wake) {
    life->wake_up();
  }
  start_workers(out.start);
  for (auto& [life, seq] : out.cancel) {
    asio::post(life->inc->ctx.executor, [life = life, seq = seq] {
      if (life->running_seq != seq) return;  // it ended first
      life->emitted = true;
      life->inc->cancel.emit(asio::cancellation_type::terminal);
    });
  }
  for (auto& [j, e] : out.answer) j->complete(e);
  if (out.shut_down) {
    asio::dispatch(sup_->executor(), [sup = sup_] {
      sup->api_stop(true, [](boost::system::error_code, supervisor_exit) {});
    });
  }
}

pool_stats worker_pool_impl::stats() const {
  std::lock_guard lock(mutex_);
  return stats_locked();
}

pool_stats worker_pool_impl::stats_locked() const {
  pool_stats s = stats_;
  s.workers_alive = alive_;
  return s;
}

}  // namespace backplane::detail
