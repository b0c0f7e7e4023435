// Stopping children: a shutdown request or a kill, the wait for the exit
// under the policy's deadline, and abandoning a child that ignores both.

#include "supervisor_impl.hpp"

#include "reasons.hpp"
#include "stop_grace.hpp"

#include <boost/asio/dispatch.hpp>

#include <fmt/format.h>

namespace asio = boost::asio;

namespace backplane::detail {

using std::chrono::nanoseconds;

void supervisor_impl::kill(child_record& r) {
  if (!r.run) return;
  asio::dispatch(r.run->ctx.executor, [st = r.run, ln = r.ln] {
    if (!st->finished.load(std::memory_order_relaxed)) {
      // A device already gone ended with a fault (or not) of its own before
      // the kill reached it: that end is reported as it was (OTP's DOWN
      // carries the child's own reason, not `killed`). The run, which may
      // still be awaiting, is cancelled all the same.
      if (ln.connected()) st->killed.store(true, std::memory_order_relaxed);
      if (st->on_kill) {
        st->on_kill();
      } else {
        st->cancel.emit(asio::cancellation_type::terminal);
      }
    }
  });
}

void supervisor_impl::request_stop(child_record& r) {
  if (!r.run || !r.run->managed || r.run->on_kill) {
    (void)r.ln.request_shutdown(id_);
    return;
  }
  // A managed work ends the way its listener ends it on a shutdown request (a clean end, the
  // work cancelled), without the request's trip through the device's mailbox: the
  // listener's wake-up is one executor pass per stopped child, and a group stop makes them in
  // a row. Done on the child's executor (inline when it is ours), where the listener runs. A
  // work that took its device is asked through its device, for its new owner to decide.
  asio::dispatch(r.run->ctx.executor, [run = r.run, ln = r.ln, requester = id_] {
    if (run->finished.load(std::memory_order_relaxed) || run->ended_by_message) return;
    if (!run->dev.valid()) {
      (void)ln.request_shutdown(requester);
      return;
    }
    (void)run->ends_on(backplane::shutdown{requester});
    run->cancel.emit(asio::cancellation_type::terminal);
  });
}

void supervisor_impl::retire(backplane::line const& l) {
  dev_.unlink_line(l, link_mode::peer);
  // Unlinked, it can no longer tell us it went away; if it already did, the
  // message is in our mailbox and must not be taken for a stranger's.
  if (!l.connected()) retired_.insert(l.id());
}

void supervisor_impl::abandon(child_record& r) {
  r.strand.reset();  // the abandoned run may keep it busy
  retire(r.ln);
  by_device_.erase(r.dev);
  r.status = child_status::stopped;
  r.run.reset();
}

void supervisor_impl::deadline_fire::operator()() const {
  if (auto s = self.lock()) s->deadline_fired();
}

void supervisor_impl::deadline_fired() {
  if (deadline_->timer_fired([this] { return make_deadline_fire(); })) wake();
}

asio::awaitable<std::optional<supervisor_impl::child_exit>> supervisor_impl::await_exit(
    child_record& r, std::optional<supervisor_clock::time_point> deadline) {
  deadline_->arm(deadline, [this] { return make_deadline_fire(); });
  device_id const target = r.dev;
  bool kill_sent = r.spec.shutdown.is_brutal() || killed_;
  child_exit heard;
  while (r.status == child_status::running && r.dev == target) {
    if (deadline_->passed()) {
      deadline_->finish();
      co_return std::nullopt;
    }
    if (killed_ && !kill_sent) {
      // Our parent killed us while we waited for this child: no more waiting.
      kill(r);
      kill_sent = true;
    }
    auto [ec, m] = co_await receive();
    if (ended_) co_return heard;  // crashed() while we waited
    if (ec) continue;
    if (auto e = note(m, &r)) heard = std::move(*e);
  }
  deadline_->finish();  // its timer stays for the next stop of the batch (cleared when idle)
  co_return heard;
}

void supervisor_impl::leave_restart(child_record& r) {
  auto const parked = std::move(r.restart);  // alive until we are done with it
  if (!parked) return;
  if (parked->child != &r) {
    std::erase(parked->group, &r);
    return;
  }
  // The restart it was for is off: its members become plain stopped children.
  for (child_record* m : parked->members()) {
    if (m == &r) continue;
    m->status = child_status::stopped;
    m->restart.reset();
  }
}

asio::awaitable<void> supervisor_impl::stop_child(child_record& r) {
  if (r.status != child_status::running) {
    leave_restart(r);
    r.status = child_status::stopped;
    co_return;
  }
  shutdown_policy const pol = r.spec.shutdown;
  // A child that ignores cancellation too is abandoned after this long.
  nanoseconds const grace = abandon_grace(pol);
  device_id const dev = r.dev;
  std::uint64_t const inc = r.incarnation;
  if (pol.is_brutal() || killed_) {
    kill(r);
  } else {
    request_stop(r);
  }
  std::optional<supervisor_clock::time_point> deadline;
  if (pol.is_timeout()) deadline = clock_->now() + pol.time();
  if (pol.is_brutal()) deadline = clock_->now() + grace;
  std::optional<child_exit> ended = co_await await_exit(r, deadline);
  if (!ended && !pol.is_brutal()) {
    report(supervisor_event_kind::shutdown_error, r.spec.id, dev, inc,
           message_reason(
               reason_kind::shutdown_timeout,
               fmt::format("did not stop within {} of the shutdown request", readable(pol.time()))),
           supervisor_action::cancel);
    kill(r);
    ended = co_await await_exit(r, clock_->now() + grace);
  }
  if (!ended) {
    report(supervisor_event_kind::shutdown_error, r.spec.id, dev, inc,
           message_reason(reason_kind::kill_timeout,
                          fmt::format("ignored cancellation for {}", readable(grace))),
           supervisor_action::abandon);
    exit_.abandoned.push_back(r.spec.id);
    abandon(r);
    co_return;
  }
  // OTP reports a child that, asked to stop, ended with a fault of its own.
  if (ended->fault && !ended->killed) {
    report(supervisor_event_kind::shutdown_error, r.spec.id, dev, inc, std::move(ended->reason),
           supervisor_action::none);
  }
}

asio::awaitable<void> supervisor_impl::stop_all() {
  for (auto it = children_.rbegin(); it != children_.rend(); ++it) co_await stop_child(**it);
}

void supervisor_impl::remove(child_record* r) {
  if (r->status == child_status::running) by_device_.erase(r->dev);
  leave_restart(*r);
  by_id_.erase(r->spec.id);
  children_.erase(r->pos);
}

child_record* supervisor_impl::find(std::string const& id) {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

}  // namespace backplane::detail
