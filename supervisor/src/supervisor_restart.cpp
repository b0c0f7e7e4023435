// The supervisor's decisions: what a child's exit calls for (OTP's restart
// types and intensity), and the restart of its group under the strategy.

#include "supervisor_impl.hpp"

#include "reasons.hpp"

#include <boost/asio/post.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace asio = boost::asio;

namespace backplane::detail {

using std::chrono::nanoseconds;

void supervisor_impl::give_up(std::string const& id, device_id dev, std::uint64_t incarnation,
                              event_reason const& reason) {
  report(supervisor_event_kind::intensity_exceeded, id, dev, incarnation, reason,
         supervisor_action::terminate);
  gave_up_because_ = intensity_text();
  stopping_ = true;
  exit_.intensity_exceeded = true;
  exit_.fault = fault::error();
}

std::string supervisor_impl::intensity_text() const {
  // "4 restarts > 3 in 5s": the restarts counted, with the one refused.
  auto const n = window_.in_window(clock_->now());
  return fmt::format("{} restart{} > {} in {}", n, n == 1 ? "" : "s", window_.max_restarts(),
                     readable(window_.period()));
}

std::string supervisor_impl::give_up_text() const {
  return fmt::format("supervisor {} gave up: {}", path_, gave_up_because_);
}

void supervisor_impl::decide_while_stopping(exit_note const& n) {
  report(supervisor_event_kind::child_terminated, n.id, n.dev, n.incarnation, n.reason,
         supervisor_action::none, std::nullopt, "supervisor stopping");
}

std::optional<pending_restart> supervisor_impl::decide(exit_note const& n) {
  if (stopping_) {
    decide_while_stopping(n);
    return std::nullopt;
  }
  child_record* r = find(n.id);
  if (!r || r->dev != n.dev || r->status != child_status::stopped) {
    // An old incarnation, already dealt with: a group restart took it along
    // (or dropped its temporary spec) before its own exit came up.
    report(supervisor_event_kind::child_terminated, n.id, n.dev, n.incarnation, n.reason,
           supervisor_action::none, std::nullopt,
           !r                                   ? "spec removed"
           : r->status == child_status::stopped ? "old incarnation"
                                                : "restarted with its group");
    return std::nullopt;
  }
  bool const should_restart = r->spec.restart == restart_type::permanent ||
                              (r->spec.restart == restart_type::transient && n.f.has_value());
  if (!should_restart) {
    bool const temporary = r->spec.restart == restart_type::temporary;
    std::string_view const shut = r->spec.significant ? auto_shutdown_after(*r) : "";
    if (!shut.empty()) {
      report(supervisor_event_kind::child_terminated, n.id, n.dev, n.incarnation, n.reason,
             supervisor_action::auto_shutdown, std::nullopt, shut);
      stopping_ = true;
      exit_.auto_shutdown = true;
    } else {
      report(supervisor_event_kind::child_terminated, n.id, n.dev, n.incarnation, n.reason,
             supervisor_action::none, std::nullopt,
             temporary ? "temporary: spec removed" : "transient, exited cleanly");
    }
    if (temporary) remove(r);
    return std::nullopt;
  }
  // Counted first, so that the report shows the restart it asks for.
  if (window_.add(clock_->now())) {
    report(supervisor_event_kind::child_terminated, n.id, n.dev, n.incarnation, n.reason,
           supervisor_action::give_up);
    give_up(n.id, n.dev, n.incarnation, n.reason);
    return std::nullopt;
  }
  auto const delay = backoff_delay(*r);
  if (heard(supervisor_event_kind::child_terminated)) {
    report(supervisor_event_kind::child_terminated, n.id, n.dev, n.incarnation, n.reason,
           supervisor_action::restart,
           delay > nanoseconds::zero() ? std::optional(delay) : std::nullopt);
  }
  pending_restart p;
  p.child = r;
  p.delay = delay;
  return p;
}

supervisor_impl::group_t supervisor_impl::group_of(child_record* failed) {
  group_t group;
  switch (spec_.strategy) {
    case restart_strategy::one_for_one: group.push_back(failed); break;
    case restart_strategy::one_for_all:
      for (auto& c : children_) group.push_back(c.get());
      break;
    case restart_strategy::rest_for_one: {
      bool after = false;
      for (auto& c : children_) {
        after = after || c.get() == failed;
        if (after) group.push_back(c.get());
      }
      break;
    }
  }
  return group;
}

supervisor_clock::duration supervisor_impl::backoff_delay(child_record& r) {
  if (!r.spec.backoff) return supervisor_clock::duration::zero();
  return r.backoff.next(*r.spec.backoff, clock_->now(), rng_);
}

bool supervisor_impl::restart(pending_restart& p) {
  if (!p.grouped && spec_.strategy != restart_strategy::one_for_one) {
    p.group = group_of(p.child);
    p.grouped = true;
  }
  // 1. The rest of the group stops, last started first: the caller awaits
  //    that and comes back.
  for (child_record* m : p.members())
    if (must_stop(*m)) return false;
  // 2. Temporary members, stopped as a side effect, are dropped; the others
  //    wait to start.
  std::erase_if(p.group, [&](child_record* m) {
    if (m == p.child || m->spec.restart != restart_type::temporary) {
      m->status = child_status::restarting;
      return false;
    }
    remove(m);
    return true;
  });
  p.child->status = child_status::restarting;
  // 3. After a backoff delay, or (a retry) behind what the mailbox holds.
  if (p.retry || p.delay > supervisor_clock::duration::zero()) {
    park(std::move(p));
    return true;
  }
  // 4. The group starts in order. A start that fails is counted, and the
  //    restart tries again through this same path.
  for (child_record* c : p.members()) {
    event_reason why;
    switch (start_incarnation(*c, why)) {
      case start_outcome::started:
        if (heard(supervisor_event_kind::restarted))
          report(supervisor_event_kind::restarted, *c, {}, supervisor_action::none);
        continue;
      case start_outcome::ignored: ignored_restart(*c); continue;
      case start_outcome::failed: break;
    }
    if (!start_failed(p, *c, why)) return true;
    return restart(p);
  }
  return true;
}

asio::awaitable<void> supervisor_impl::restart_after_stops(pending_restart p) {
  do {
    auto const members = p.members();
    for (auto it = members.rbegin(); it != members.rend(); ++it) {
      if (must_stop(**it)) co_await stop_child(**it);
      if (stopping_) co_return;
    }
  } while (!restart(p));
}

bool supervisor_impl::start_failed(pending_restart& p, child_record& c, event_reason const& why) {
  // This try is over; the next one counts toward intensity like any restart.
  std::uint64_t const failed_inc = c.incarnation;
  if (window_.add(clock_->now())) {
    report(supervisor_event_kind::start_error, c.spec.id, device_id{}, failed_inc, why,
           supervisor_action::give_up);
    give_up(c.spec.id, device_id{}, failed_inc, why);
    return false;  // stop_all stops what this round started
  }
  if (spec_.strategy == restart_strategy::rest_for_one) {
    // OTP retries a restart of the child that failed to start: the children
    // before it, started by this try, stay up; the retry is of it and the
    // children after it (one_for_all's retry stops and restarts them all).
    p.group.erase(p.group.begin(), std::find(p.group.begin(), p.group.end(), &c));
    p.child = &c;
  }
  p.delay = backoff_delay(*p.child);
  p.retry = true;
  report(supervisor_event_kind::start_error, c.spec.id, device_id{}, failed_inc, why,
         supervisor_action::retry,
         p.delay > nanoseconds::zero() ? std::optional(p.delay) : std::nullopt);
  return true;
}

void supervisor_impl::ignored_restart(child_record& c) {
  // OTP's restart with a start that returns ignore: the child's pid becomes
  // undefined, its spec stays, nothing is retried (restart_child may).
  c.status = child_status::stopped;
}

void supervisor_impl::park(pending_restart p) {
  auto const parked = std::make_shared<pending_restart>(std::move(p));
  for (child_record* m : parked->members()) m->restart = parked;
  std::weak_ptr<supervisor_impl> weak = weak_from_this();
  std::weak_ptr<pending_restart> weak_restart = parked;
  auto fire = [weak, weak_restart] {
    auto self = weak.lock();
    if (!self) return;
    // The job is only ever run by run(), which keeps the supervisor alive.
    supervisor_impl* s = self.get();
    s->enqueue([s, weak_restart]() -> asio::awaitable<void> {
      auto const parked = weak_restart.lock();  // gone if its child was stopped or removed
      if (s->stopping_ || !parked) co_return;
      // Under way again: its members are no longer parked (still restarting).
      pending_restart next;
      next.child = parked->child;
      next.group = std::move(parked->group);
      next.grouped = parked->grouped;
      for (child_record* m : next.members()) m->restart.reset();
      if (!s->restart(next)) co_await s->restart_after_stops(std::move(next));
    });
  };
  if (parked->delay > supervisor_clock::duration::zero()) {
    parked->timer = clock_->schedule(clock_->now() + parked->delay, ex_, std::move(fire));
  } else {
    // A retry goes behind whatever is already waiting (OTP's try_again_restart
    // message), so the supervisor keeps answering while a start keeps failing.
    asio::post(ex_, std::move(fire));
  }
}

}  // namespace backplane::detail
