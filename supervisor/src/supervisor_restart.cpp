// The supervisor's decisions: what a child's exit calls for (OTP's restart
// types and intensity), and the restart of its group under the strategy.

// Completions go through any_completion_handler (see supervisor.cpp for why
// GCC's -Wtsan is silenced here).
#if defined(__GNUC__) && !defined(__clang__) && defined(__SANITIZE_THREAD__)
#pragma GCC diagnostic ignored "-Wtsan"
#endif

#include "supervisor_impl.hpp"

#include "reasons.hpp"

#include <boost/asio/post.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

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

std::optional<supervisor_impl::restart_order> supervisor_impl::decide(exit_note const& n) {
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
  return restart_order{r, delay};
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

bool supervisor_impl::group_needs_stops(child_record* failed) {
  if (spec_.strategy == restart_strategy::one_for_one) return false;
  for (child_record* c : group_of(failed))
    if (c != failed && c->status != child_status::stopped) return true;
  return false;
}

supervisor_clock::duration supervisor_impl::backoff_delay(child_record& r) {
  if (!r.spec.backoff) return supervisor_clock::duration::zero();
  auto const& b = *r.spec.backoff;
  auto const now = clock_->now();
  if (now - r.quiet_since >= b.reset_after) r.consecutive = 0;
  double base = static_cast<double>(b.initial.count()) *
                std::pow(b.multiplier, static_cast<double>(r.consecutive));
  base = std::min(base, static_cast<double>(b.max.count()));
  double factor = 1.0;
  if (b.jitter > 0) {
    std::uniform_real_distribution<double> dist(1.0 - b.jitter, 1.0 + b.jitter);
    factor = dist(rng_);
  }
  double const ns = std::min(base * factor, 9.0e18);
  auto const delay = nanoseconds(static_cast<std::int64_t>(ns));
  if (r.consecutive < std::numeric_limits<std::uint32_t>::max()) ++r.consecutive;
  // A retry right after the attempt is not quiet; the next start resets this.
  r.quiet_since = now + delay;
  return delay;
}

asio::awaitable<void> supervisor_impl::restart_group(child_record* failed,
                                                     supervisor_clock::duration delay) {
  group_t const group = group_of(failed);
  // Stop the rest of the group, last started first.
  for (auto it = group.rbegin(); it != group.rend(); ++it) {
    child_record* c = *it;
    if (c != failed && c->status != child_status::stopped) co_await stop_child(*c);
    if (stopping_) co_return;
  }
  if (auto plan = restart_stopped_group(failed, delay)) co_await settle_retry(std::move(*plan));
}

std::optional<supervisor_impl::retry_plan> supervisor_impl::restart_stopped_group(
    child_record* failed, supervisor_clock::duration delay) {
  if (spec_.strategy == restart_strategy::one_for_one) {
    failed->status = child_status::restarting;
    failed->anchor = nullptr;
  } else {
    mark_group(failed);
  }
  if (delay > supervisor_clock::duration::zero()) {
    schedule_restart(failed, delay);
    return std::nullopt;
  }
  return start_group_now(failed);
}

void supervisor_impl::mark_group(child_record* failed) {
  // Temporary children stopped as a side effect are dropped, not restarted.
  for (child_record* c : group_of(failed)) {
    if (c == failed) {
      c->status = child_status::restarting;
      c->anchor = nullptr;
    } else if (c->spec.restart == restart_type::temporary) {
      remove(c);
    } else {
      c->status = child_status::restarting;
      c->anchor = failed;
    }
  }
}

std::optional<supervisor_impl::retry_plan> supervisor_impl::start_group_now(child_record* anchor) {
  group_t members;
  if (spec_.strategy == restart_strategy::one_for_one) {
    // The common case, without building a group.
    if (anchor->status != child_status::restarting) return std::nullopt;
    event_reason why;
    switch (start_incarnation(*anchor, why)) {
      case start_outcome::started:
        if (heard(supervisor_event_kind::restarted))
          report(supervisor_event_kind::restarted, *anchor, {}, supervisor_action::none);
        return std::nullopt;
      case start_outcome::ignored: ignored_restart(*anchor); return std::nullopt;
      case start_outcome::failed: break;
    }
    members.push_back(anchor);
    return start_failed(anchor, anchor, {}, std::move(members), why);
  }
  for (auto& c : children_) {
    if (c->status == child_status::restarting && (c.get() == anchor || c->anchor == anchor))
      members.push_back(c.get());
  }
  group_t started;
  for (child_record* c : members) {
    event_reason why;
    switch (start_incarnation(*c, why)) {
      case start_outcome::started:
        if (heard(supervisor_event_kind::restarted))
          report(supervisor_event_kind::restarted, *c, {}, supervisor_action::none);
        started.push_back(c);
        continue;
      case start_outcome::ignored: ignored_restart(*c); continue;
      case start_outcome::failed: break;
    }
    return start_failed(anchor, c, std::move(started), std::move(members), why);
  }
  return std::nullopt;
}

std::optional<supervisor_impl::retry_plan> supervisor_impl::start_failed(child_record* anchor,
                                                                         child_record* c,
                                                                         group_t started,
                                                                         group_t members,
                                                                         event_reason const& why) {
  // This try is over; the next one counts toward intensity like any restart.
  std::uint64_t const failed_inc = c->incarnation;
  if (window_.add(clock_->now())) {
    report(supervisor_event_kind::start_error, c->spec.id, device_id{}, failed_inc, why,
           supervisor_action::give_up);
    give_up(c->spec.id, device_id{}, failed_inc, why);
    return std::nullopt;  // stop_all stops what this round started
  }
  if (spec_.strategy == restart_strategy::rest_for_one) {
    // OTP retries a restart of the child that failed to start: the children
    // before it, started by this try, stay up; the retry is of it and the
    // children after it (one_for_all's retry restarts them all).
    members.erase(members.begin(), std::find(members.begin(), members.end(), c));
    started.clear();
    anchor = c;
  }
  auto const delay = backoff_delay(*anchor);
  report(supervisor_event_kind::start_error, c->spec.id, device_id{}, failed_inc, why,
         supervisor_action::retry,
         delay > nanoseconds::zero() ? std::optional(delay) : std::nullopt);
  return retry_plan{anchor, std::move(started), std::move(members), delay};
}

void supervisor_impl::ignored_restart(child_record& c) {
  // OTP's restart with a start that returns ignore: the child's pid becomes
  // undefined, its spec stays, nothing is retried (restart_child may).
  c.status = child_status::stopped;
  c.anchor = nullptr;
}

asio::awaitable<void> supervisor_impl::start_group(child_record* anchor) {
  if (auto plan = start_group_now(anchor)) co_await settle_retry(std::move(*plan));
}

asio::awaitable<void> supervisor_impl::settle_retry(retry_plan p) {
  // A group restart that fails part-way stops what it restarted, last
  // started first, before it tries again.
  for (auto it = p.started.rbegin(); it != p.started.rend(); ++it) {
    co_await stop_child(**it);
    if (stopping_) co_return;
  }
  schedule_retry(p);
}

void supervisor_impl::schedule_retry(retry_plan const& p) {
  child_record* const anchor = p.anchor;
  for (child_record* m : p.members) {
    // Unless an exit heard meanwhile removed it or made it someone else's.
    if (m->status == child_status::running) continue;
    m->status = child_status::restarting;
    m->anchor = m == anchor ? nullptr : anchor;
  }
  schedule_restart(anchor, p.delay);
}

void supervisor_impl::schedule_restart(child_record* anchor, supervisor_clock::duration delay) {
  anchor->status = child_status::restarting;
  std::uint64_t const seq = ++anchor->restart_seq;
  std::string id = anchor->spec.id;
  std::weak_ptr<supervisor_impl> weak = weak_from_this();
  auto fire = [weak, id, seq] {
    auto self = weak.lock();
    if (!self) return;
    // The job is only ever run by run(), which keeps the supervisor alive.
    supervisor_impl* p = self.get();
    p->enqueue([p, id, seq]() -> asio::awaitable<void> {
      if (p->stopping_) co_return;
      child_record* r = p->find(id);
      if (!r || r->restart_seq != seq || r->status != child_status::restarting) co_return;
      r->restart_timer.reset();
      co_await p->start_group(r);
    });
  };
  if (delay > supervisor_clock::duration::zero()) {
    anchor->restart_timer = clock_->schedule(clock_->now() + delay, ex_, std::move(fire));
  } else {
    // A retry goes behind whatever is already waiting (OTP's try_again_restart
    // message), so the supervisor keeps answering while a start keeps failing.
    asio::post(ex_, std::move(fire));
  }
}

}  // namespace backplane::detail
