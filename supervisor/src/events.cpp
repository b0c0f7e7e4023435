// The event's names, its reason on one line, and the logfmt line for people.

#include <backplane/supervisor/events.hpp>

#include <backplane/format.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace backplane {

std::string_view to_string(supervisor_event_kind k) noexcept {
  switch (k) {
    case supervisor_event_kind::child_terminated: return "child_terminated";
    case supervisor_event_kind::start_error: return "start_error";
    case supervisor_event_kind::shutdown_error: return "shutdown_error";
    case supervisor_event_kind::intensity_exceeded: return "intensity_exceeded";
    case supervisor_event_kind::restarted: return "restarted";
  }
  return "unknown";
}

std::string_view to_string(reason_kind k) noexcept {
  switch (k) {
    case reason_kind::none: return "none";
    case reason_kind::clean: return "clean";
    case reason_kind::exception: return "exception";
    case reason_kind::error: return "error";
    case reason_kind::cascade: return "cascade";
    case reason_kind::drop: return "drop";
    case reason_kind::killed: return "killed";
    case reason_kind::start_error: return "start_error";
    case reason_kind::shutdown_timeout: return "shutdown_timeout";
    case reason_kind::kill_timeout: return "kill_timeout";
  }
  return "unknown";
}

std::string_view to_string(supervisor_action a) noexcept {
  switch (a) {
    case supervisor_action::none: return "none";
    case supervisor_action::restart: return "restart";
    case supervisor_action::retry: return "retry";
    case supervisor_action::give_up: return "give_up";
    case supervisor_action::terminate: return "terminate";
    case supervisor_action::fail_start: return "fail_start";
    case supervisor_action::cancel: return "cancel";
    case supervisor_action::abandon: return "abandon";
    case supervisor_action::auto_shutdown: return "auto_shutdown";
  }
  return "unknown";
}

std::string to_string(event_reason const& r) {
  if (r.kind == reason_kind::cascade)
    return r.cascade_from ? fmt::format("cascade from {}", to_string(r.cascade_from)) : "cascade";
  // What a start function said, as it said it (the event already says
  // start_error; a nested supervisor's reason nests without repeating it).
  if (r.kind == reason_kind::start_error && !r.message.empty()) return r.message;
  std::string out(to_string(r.kind));
  auto const part = [&out](std::string const& s) {
    if (s.empty()) return;
    out += ": ";
    out += s;
  };
  part(r.exception_type);
  part(r.error_category);
  part(r.error_type);
  part(r.message);
  return out;
}

std::string readable(std::chrono::nanoseconds d) {
  // fmt rather than "literal" + string: g++ 12 at -O3 reports a false -Wrestrict in that
  // operator (GCC bug 105651), an error in CI and noise in users' Release builds.
  if (d.count() < 0) return fmt::format("-{}", readable(-d));
  if (d.count() == 0) return "0s";
  struct unit {
    std::int64_t ns;
    char const* name;
  };
  static constexpr unit units[] = {{1'000'000'000, "s"}, {1'000'000, "ms"}, {1'000, "us"}};
  unit u{1, "ns"};
  for (auto const& c : units) {
    if (d.count() >= c.ns) {
      u = c;
      break;
    }
  }
  if (d.count() % u.ns == 0) return fmt::format("{}{}", d.count() / u.ns, u.name);
  double const v = static_cast<double>(d.count()) / static_cast<double>(u.ns);
  // Three significant digits, trailing zeros dropped: 11.8ms, 1.5s, 250us.
  int const whole_digits = v < 10 ? 1 : v < 100 ? 2 : 3;
  std::string s = fmt::format("{:.{}f}", v, std::max(0, 3 - whole_digits));
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s + u.name;
}

namespace {

std::string quoted(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

/// logfmt: a value stays bare unless a space, quote, '=' or control
/// character would make the line ambiguous.
std::string logfmt_value(std::string_view s) {
  bool const bare = !s.empty() && std::none_of(s.begin(), s.end(), [](char c) {
    return c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20;
  });
  return bare ? std::string(s) : quoted(s);
}

}  // namespace

std::string format_text(supervisor_event const& e) {
  // key=value pairs (logfmt): greppable; `reason` and `restarts` are always
  // quoted, other values when they need it.
  // A `restarted` has no reason: no key for it.
  std::string const reason = e.reason.kind == reason_kind::none
                                 ? std::string()
                                 : fmt::format(" reason={}", quoted(to_string(e.reason)));
  std::string out = fmt::format(
      "supervisor={} child={} device={} incarnation={} event={}{} restarts=\"{} {} {} in {}\" "
      "action={}",
      logfmt_value(e.supervisor), e.child.empty() ? "-" : logfmt_value(e.child),
      e.device ? to_string(e.device) : std::string("none"), e.incarnation, to_string(e.event),
      reason, e.restarts, e.restarts > e.max_restarts ? ">" : "of", e.max_restarts,
      readable(e.period), to_string(e.action));
  if (e.delay) out += fmt::format(" delay={}", readable(*e.delay));
  if (e.reason.job) out += fmt::format(" job={}", *e.reason.job);
  if (e.reason.job_key) out += fmt::format(" job_key={}", logfmt_value(*e.reason.job_key));
  if (!e.note.empty()) out += fmt::format(" note={}", logfmt_value(e.note));
  return out;
}

}  // namespace backplane
