// systemd_notifier: libsystemd's sd_notify and sd_watchdog_enabled, when this build has them.

#include "systemd_notifier.hpp"

#include <cstdint>
#include <cstdlib>

#if BACKPLANE_SERVICE_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace backplane::detail {

bool systemd_notifier::compiled_in() noexcept { return BACKPLANE_SERVICE_HAVE_SYSTEMD != 0; }

systemd_notifier::systemd_notifier(bool enabled) {
  if (!enabled) return;
  char const* socket = std::getenv("NOTIFY_SOCKET");
  if (socket == nullptr || *socket == '\0') return;
#if BACKPLANE_SERVICE_HAVE_SYSTEMD
  active_ = true;
  std::uint64_t usec = 0;
  // > 0: systemd wants pings from this process (WATCHDOG_PID, if set, is ours).
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    watchdog_interval_ = std::chrono::microseconds(usec / 2);
  }
#else
  missing_ = true;
#endif
}

void systemd_notifier::notify(std::string const& state) const {
  if (!active_) return;
#if BACKPLANE_SERVICE_HAVE_SYSTEMD
  // A failed notification is not the tree's problem: systemd will time out the start or the
  // watchdog and say so in its own log.
  (void)sd_notify(0, state.c_str());
#else
  (void)state;
#endif
}

std::string systemd_notifier::status_line(std::string_view text) {
  std::string out = "STATUS=";
  for (char c : text) out.push_back(c == '\n' || c == '\r' ? ' ' : c);
  return out;
}

}  // namespace backplane::detail
