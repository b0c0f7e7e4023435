// The supervisor's loop and its mailbox: the one receive, the jobs that
// interrupt it, and what a child's exit heard there means.

#include "supervisor_impl.hpp"

#include "reasons.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace asio = boost::asio;

namespace backplane::detail {

asio::awaitable<std::tuple<boost::system::error_code, message>> supervisor_impl::receive() {
  return dev_.async_receive(
      asio::bind_cancellation_slot(wake_.slot(), asio::as_tuple(asio::use_awaitable)));
}

void supervisor_impl::wake() { wake_.emit(asio::cancellation_type::total); }

void supervisor_impl::enqueue(job j) {
  if (ended_) return;
  jobs_.push_back(std::move(j));
  wake();
}

std::optional<supervisor_impl::child_exit> supervisor_impl::note(message const& m,
                                                                 child_record const* target) {
  if (auto const* gone = as_disconnected(m)) {
    child_record* r = by_device_.find(gone->sender);
    if (!r) {
      if (retired_.erase(gone->sender)) return std::nullopt;
      // Not a child: a device that we monitor (our parent) went away. Its
      // fault is ours, as with manage; a clean exit is forgotten.
      if (gone->fault && !stopping_) {
        stopping_ = true;
        exit_.fault = fault::cascade(gone->sender);
      }
      return std::nullopt;
    }
    by_device_.erase(gone->sender);
    r->status = child_status::stopped;
    // Built only if some report could use it (describing an exception is not free).
    event_reason reason = reasons_wanted() ? exit_reason(*r, *gone) : event_reason{};
    bool const killed = r->run && r->run->killed.load(std::memory_order_relaxed) &&
                        !own_fault_after_kill(*gone, r->run->on_kill != nullptr);
    r->run.reset();
    if (r == target) return child_exit{gone->fault, std::move(reason), killed};
    exits_.push_back(exit_note{r->spec.id, r->dev, r->incarnation, gone->fault, std::move(reason)});
    return std::nullopt;
  }
  if (as_shutdown(m)) stopping_ = true;
  return std::nullopt;
}

asio::awaitable<void> supervisor_impl::run(std::shared_ptr<supervisor_impl> self) {
  (void)self;
  while (!stopping_) {
    // Exits first, then calls, one at a time. A one_for_one restart is decided
    // and done right here; only what must wait for children to stop awaits.
    while (!exits_.empty() || (!jobs_.empty() && !stopping_)) {
      if (!exits_.empty()) {
        exit_note n = std::move(exits_.front());
        exits_.pop_front();
        // OTP's restart(Strategy, Child, State); a coroutine only when
        // members must stop first.
        if (auto order = decide(n); order && !restart(*order))
          co_await restart_after_stops(std::move(*order));
      } else {
        job j = std::move(jobs_.front());
        jobs_.pop_front();
        co_await j();
      }
    }
    if (stopping_) break;
    // Parked with nothing to do: no stop is in progress, so no deadline.
    deadline_->clear();
    idle_ = true;
    auto [ec, m] = co_await receive();
    idle_ = false;
    if (ended_) co_return;  // crashed() while we waited
    if (!ec) note(m, nullptr);
  }
  if (ended_) co_return;  // crashed(): nothing more to do
  co_await stop_all();
  // Children that ended on their own meanwhile: reported, never restarted,
  // never waited for.
  while (!exits_.empty()) {
    decide_while_stopping(exits_.front());
    exits_.pop_front();
  }
  // Calls that queued behind the shutdown learn that the supervisor is down
  // (every job checks stopping_ first).
  while (!jobs_.empty()) {
    job j = std::move(jobs_.front());
    jobs_.pop_front();
    co_await j();
  }
  finish();
}

}  // namespace backplane::detail
