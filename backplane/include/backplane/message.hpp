#pragma once
// message: what a device can find in its mailbox.

#include <backplane/detail/config_check.hpp>
#include <backplane/device_id.hpp>
#include <backplane/fault.hpp>

#include <exception>
#include <optional>
#include <variant>

namespace backplane {

/// A device we monitor has disconnected: cleanly when `fault` is empty,
/// otherwise with that fault. `cause` is the exception behind a
/// `fault::error()` when the device said what it was: `manage`,
/// `part_manage` and `spawn_managed` put the exception their work threw
/// there, or a `returned_error` describing the error it returned by value;
/// so does a supervisor for a child's run that throws. Empty otherwise (a
/// drop, a cascade, a clean exit, a cancelled manage).
struct disconnected {
  device_id sender;
  std::optional<backplane::fault> fault;
  std::exception_ptr cause{};
  friend bool operator==(disconnected const&, disconnected const&) = default;
};

/// A request to stop, sent through a line by `requester`. `part_manage` and
/// `manage` answer it by cancelling their work and disconnecting cleanly.
struct shutdown {
  device_id requester;
  friend bool operator==(shutdown const&, shutdown const&) = default;
};

/// Either notification. Use std::visit, std::get_if or the helpers below.
using message = std::variant<disconnected, shutdown>;

[[nodiscard]] inline disconnected const* as_disconnected(message const& m) noexcept {
  return std::get_if<disconnected>(&m);
}
[[nodiscard]] inline shutdown const* as_shutdown(message const& m) noexcept {
  return std::get_if<shutdown>(&m);
}

}  // namespace backplane
