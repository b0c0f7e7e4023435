#include <backplane/supervisor/events.hpp>

#include <backplane/format.hpp>

#include <fmt/format.h>

#include <algorithm>

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

namespace {
std::string quoted_json(std::string_view s) {
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

std::string device_text(device_id id) { return id ? to_string(id) : std::string("none"); }

/// logfmt: a value stays bare unless a space, quote, '=' or control
/// character would make the line ambiguous.
std::string logfmt_value(std::string_view s) {
  bool const bare = !s.empty() && std::none_of(s.begin(), s.end(), [](char c) {
    return c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20;
  });
  return bare ? std::string(s) : quoted_json(s);
}
}  // namespace

std::string format_text(supervisor_event const& e) {
  // key=value pairs (logfmt): greppable; `reason` is always quoted, other
  // values when they need it.
  return fmt::format(
      "supervisor={} child={} device={} incarnation={} event={} reason={} restarts={}/{} "
      "period={}ms action={}",
      logfmt_value(e.supervisor), e.child.empty() ? "-" : logfmt_value(e.child),
      device_text(e.device), e.incarnation, to_string(e.event), quoted_json(e.reason), e.restarts,
      e.max_restarts, std::chrono::duration_cast<std::chrono::milliseconds>(e.period).count(),
      logfmt_value(e.action));
}

std::string format_json(supervisor_event const& e) {
  return fmt::format(
      "{{\"supervisor\":{},\"child\":{},\"device\":{},\"incarnation\":{},\"event\":\"{}\","
      "\"reason\":{},\"restarts\":{},\"max_restarts\":{},\"period_ms\":{},\"action\":{}}}",
      quoted_json(e.supervisor), quoted_json(e.child), quoted_json(device_text(e.device)),
      e.incarnation, to_string(e.event), quoted_json(e.reason), e.restarts, e.max_restarts,
      std::chrono::duration_cast<std::chrono::milliseconds>(e.period).count(),
      quoted_json(e.action));
}

}  // namespace backplane
