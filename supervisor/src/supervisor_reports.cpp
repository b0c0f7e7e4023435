// The supervisor's reports: what an exit, a start or a stop becomes as an
// event, and the one place events reach the observer and the logger.

#include "reasons.hpp"
#include "supervisor_impl.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>

namespace backplane::detail {

event_reason supervisor_impl::exit_reason(child_record const& r, disconnected const& gone) const {
  static std::optional<event_reason> const none;
  if (!r.run) return detail::exit_reason(gone, false, none);
  return detail::exit_reason(gone, r.run->killed.load(std::memory_order_relaxed), r.run->returned);
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
  auto const level = report_level(kind, reason.kind);
  bool const log = logger_->should_log(level);
  if (!log && !spec_.observer) return;  // nobody listens: build nothing
  // Reports are made in the middle of decisions: nothing thrown here may
  // leave, or the supervisor's state would be half-changed and the exception
  // would escape io_context::run(). The observer and the logger are called
  // apart, so one that throws costs the other nothing.
  try {
    supervisor_event e;
    e.supervisor = path_;
    e.child = child;
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
    if (spec_.observer) {
      try {
        spec_.observer(e);
      } catch (...) {
        report_failed("the observer");
      }
    }
    if (log) {
      try {
        logger_->log(level, "{}", json_ ? format_json(e) : format_text(e));
      } catch (...) {
        report_failed("the logger");
      }
    }
  } catch (...) {
    report_failed("building the event");
  }
}

void supervisor_impl::report_failed(char const* who) {
  // Told once per supervisor, straight to stderr: the logger may be what
  // fails. Later failures are only counted (supervisor_exit says how many).
  if (report_failures_++ > 0) return;
  std::string what = "unknown exception";
  try {
    what = to_string(exception_reason(std::current_exception()));
  } catch (...) {
  }
  std::fprintf(stderr,
               "backplane: supervisor %s: a report failed in %s (%s); the supervisor goes on, "
               "later failures are counted in supervisor_exit::failed_reports\n",
               path_.c_str(), who, what.c_str());
}

}  // namespace backplane::detail
