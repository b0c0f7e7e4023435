#include <backplane/format.hpp>

#include <fmt/format.h>

#include <variant>

namespace backplane {

std::string to_string(device_id id) { return fmt::format("#{}", id.value()); }

std::string_view to_string(link_mode mode) noexcept {
  switch (mode) {
    case link_mode::monitor: return "monitor";
    case link_mode::notify: return "notify";
    case link_mode::peer: return "peer";
  }
  return "none";
}

std::string to_string(fault f) {
  switch (f.what()) {
    case fault::kind::drop: return "drop";
    case fault::kind::error: return "error";
    case fault::kind::cascade: return "cascade from " + to_string(f.origin());
  }
  return "unknown";
}

std::string to_string(disconnected const& d) {
  if (!d.fault) return "disconnected " + to_string(d.sender) + " cleanly";
  std::string s = "disconnected " + to_string(d.sender) + " (" + to_string(*d.fault);
  if (d.cause) s += ": " + describe(d.cause);
  return s + ")";
}

std::string to_string(shutdown const& s) {
  return "shutdown requested by " + to_string(s.requester);
}

std::string to_string(message const& m) {
  return std::visit([](auto const& v) { return to_string(v); }, m);
}

std::string_view to_string(link_error e) noexcept {
  switch (e) {
    case link_error::device_down: return "device_down";
    case link_error::link_down: return "link_down";
  }
  return "unknown";
}

}  // namespace backplane
