#pragma once
// systemd_notifier: sd_notify when the service runs under systemd, nothing otherwise.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace backplane::detail {

/// The service's side of systemd's notify protocol. Active when enabled, built with
/// libsystemd and `NOTIFY_SOCKET` is set; otherwise every call does nothing.
///
/// Thread-safety: const members may be called from any thread (each sd_notify call is one
/// datagram on a socket of its own).
class systemd_notifier {
 public:
  /// Whether this build has libsystemd (BACKPLANE_SERVICE_HAVE_SYSTEMD).
  [[nodiscard]] static bool compiled_in() noexcept;

  explicit systemd_notifier(bool enabled);

  /// NOTIFY_SOCKET is set and we can talk to it.
  [[nodiscard]] bool active() const noexcept { return active_; }
  /// NOTIFY_SOCKET is set but this build cannot talk to it (no libsystemd).
  [[nodiscard]] bool wanted_but_missing() const noexcept { return missing_; }
  /// Half of WATCHDOG_USEC when systemd wants pings for this process (sd_watchdog_enabled).
  [[nodiscard]] std::optional<std::chrono::microseconds> watchdog_interval() const noexcept {
    return watchdog_interval_;
  }

  /// Sends `state` ("READY=1\nSTATUS=...") if active. Newlines in a STATUS= value must have
  /// been replaced by the caller (status_line does it).
  void notify(std::string const& state) const;

  /// "STATUS=<text>" with line breaks turned into spaces: systemd shows one line.
  [[nodiscard]] static std::string status_line(std::string_view text);

 private:
  bool active_ = false;
  bool missing_ = false;
  std::optional<std::chrono::microseconds> watchdog_interval_;
};

}  // namespace backplane::detail
