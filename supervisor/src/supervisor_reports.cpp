// The supervisor's reports: what an exit, a start or a stop becomes as an
// event, and the one place events reach the observer and the logger.

#include "reasons.hpp"
#include "report_delivery.hpp"
#include "supervisor_impl.hpp"

#include <spdlog/spdlog.h>

namespace backplane::detail {

event_reason supervisor_impl::exit_reason(child_record const& r, disconnected const& gone) const {
  static std::optional<event_reason> const none;
  if (!r.run) return detail::exit_reason(gone, false, none);
  bool const killed = r.run->killed.load(std::memory_order_relaxed) &&
                      !own_fault_after_kill(gone, r.run->on_kill != nullptr);
  return detail::exit_reason(gone, killed, r.run->returned);
}

namespace {
spdlog::level::level_enum level_of(supervisor_event_kind kind, bool clean) {
  return report_level(kind, clean ? reason_kind::clean : reason_kind::none);
}
}  // namespace

bool supervisor_impl::reasons_wanted() const {
  return spec_.observer || logger_->should_log(spdlog::level::critical);
}

bool supervisor_impl::heard(supervisor_event_kind kind, bool clean) const {
  // A clean exit logs at a lower level than a crash: asking for the crash's
  // level answers for both.
  return spec_.observer || logger_->should_log(level_of(kind, clean));
}

void supervisor_impl::report(supervisor_event_kind kind, std::string const& child, device_id dev,
                             std::uint64_t incarnation, event_reason reason,
                             supervisor_action action,
                             std::optional<supervisor_clock::duration> delay,
                             std::string_view note) {
  // The decision to end the supervisor is worth more than the clean exit behind it.
  auto const level = action == supervisor_action::auto_shutdown
                         ? std::max(report_level(kind, reason.kind), spdlog::level::info)
                         : report_level(kind, reason.kind);
  bool const log = logger_->should_log(level);
  if (!log && !spec_.observer) return;  // nobody listens: build nothing
  supervisor_event e;
  try {
    e.supervisor = path_;
    e.child = child;
  } catch (...) {  // out of memory: the event goes without its strings
  }
  e.device = dev;
  e.incarnation = incarnation;
  e.event = kind;
  e.reason = std::move(reason);
  e.restarts = window_.in_window(clock_->now());
  e.max_restarts = window_.max_restarts();
  e.period = window_.period();
  e.action = action;
  e.delay = delay;
  e.note = note;
  deliver(e, level, log, json_, spec_.observer, *logger_, report_failures_);
}

}  // namespace backplane::detail
