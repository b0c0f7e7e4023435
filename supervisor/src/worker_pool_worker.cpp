// A pool worker: one incarnation's coroutine, which takes jobs, runs them and
// answers them until it is told to exit, is killed, or dies of a job.

#include "worker_pool_impl.hpp"

#include <backplane/describe.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace asio = boost::asio;

namespace backplane::detail {

namespace {

/// Whatever ends the worker's frame (a return, a crash, a context torn down),
/// the pool hears of it, and the job it held is answered.
struct gone_guard {
  gone_guard(std::shared_ptr<worker_pool_impl> p, std::size_t s, std::shared_ptr<worker_life> l)
      : pool(std::move(p)), slot(s), life(std::move(l)) {}
  std::shared_ptr<worker_pool_impl> pool;
  std::size_t slot;
  std::shared_ptr<worker_life> life;
  gone_guard(gone_guard const&) = delete;
  gone_guard& operator=(gone_guard const&) = delete;
  ~gone_guard() { pool->worker_gone(slot, *life); }
};

asio::awaitable<void> worker_loop(std::shared_ptr<worker_pool_impl> pool, std::size_t slot,
                                  std::shared_ptr<worker_life> life) {
  gone_guard const guard{pool, slot, life};
  auto next = pool->take(slot, *life);
  for (;;) {
    if (next.exit) co_return;
    if (!next.job) {
      // Idle: a submitter (or a kill, or the idle timeout) wakes us.
      (void)co_await life->wake.async_receive(asio::as_tuple(asio::use_awaitable));
      next = pool->take(slot, *life);
      continue;
    }
    life->running_seq = next.job->sequence;
    try {
      co_await next.job->attempt();
    } catch (...) {
      // attempt() catches what the job throws: this is its own frame that
      // could not be made (std::bad_alloc), a crash of the job all the same.
      next.job->thrown = std::current_exception();
      next.job->thrown_text = describe(next.job->thrown);
    }
    life->running_seq = 0;
    if (life->emitted) {
      // The job was cancelled: the worker goes on with a clean state.
      life->emitted = false;
      co_await asio::this_coro::reset_cancellation_state();
    }
    // Its report (the supervisor's) carries the job's identity: the crash is
    // the job_crashed its submitter receives. The worker ends as a run that
    // threw would (fault::error, the exception as the cause), without a
    // second throw through its frames: a throw costs microseconds. A busy
    // pool hands the next queued job back with the answer: one lock per
    // job, and no suspension between jobs.
    auto done = pool->finish(slot, *life);
    if (done.crash) {
      // Gone before the supervisor hears of it, which may restart this
      // worker's slot at once on another thread (the guard then does nothing).
      pool->worker_gone(slot, *life);
      life->inc->dev.disconnect(fault::error(), done.crash);
      co_return;
    }
    next = done.take_again ? pool->take(slot, *life) : done.next;
  }
}

}  // namespace

start_result worker_pool_impl::start_worker_incarnation(std::size_t i, child_context& c) {
  auto const* inc = starting_incarnation();
  if (!inc) return start_error{"a pool worker started outside its dynamic supervisor"};
  auto life = std::make_shared<worker_life>(*inc);
  {
    std::lock_guard lock(mutex_);
    if (ended_) return start_error{"the pool has ended"};
    slot& w = slots_[i];
    w.life = life;
    w.state = slot_state::alive;
    w.idle = false;
    ++alive_;
    if (c.incarnation > 1) ++stats_.restarts;
  }
  // The supervisor kills a worker through the pool: an idle one is woken to
  // exit, a busy one's job is cancelled (it is answered as cut off).
  // Weak both: the incarnation holds on_kill, and the life holds the incarnation.
  std::weak_ptr<worker_pool_impl> weak = weak_from_this();
  std::weak_ptr<worker_life> weak_life = life;
  *c.on_kill = [weak, i, weak_life] {
    auto self = weak.lock();
    auto l = weak_life.lock();
    if (self && l) self->kill_worker(i, l);
  };
  return worker_loop(shared_from_this(), i, std::move(life));
}

}  // namespace backplane::detail
