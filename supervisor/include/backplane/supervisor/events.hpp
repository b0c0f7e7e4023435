#pragma once
// supervisor_event: one structured record per supervisor decision.

#include <backplane/device_id.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace backplane {

/// What happened (OTP's errorContext, plus what OTP leaves implicit).
enum class supervisor_event_kind : std::uint8_t {
  child_terminated,    ///< a child exited (clean exits are reported at debug level)
  start_error,         ///< a start function threw or returned a start_error
  shutdown_error,      ///< a child did not stop when asked and was cancelled / abandoned
  intensity_exceeded,  ///< too many restarts in the period: the supervisor gives up
  restarted,           ///< a child was started again
};

[[nodiscard]] std::string_view to_string(supervisor_event_kind k) noexcept;

/// Everything an operator needs about one decision, as a value. The same
/// record goes to the logger (one line, text or JSON) and to the observer.
struct supervisor_event {
  std::string supervisor{};       ///< path, e.g. "app/db/pool"
  std::string child{};            ///< child id ("" for supervisor-wide events)
  device_id device{};             ///< the incarnation's device (nobody if none)
  std::uint64_t incarnation = 0;  ///< 1 for the first start
  supervisor_event_kind event = supervisor_event_kind::child_terminated;
  std::string reason{};  ///< "clean", "error: std::runtime_error: boom", "cascade from #7", ...
  std::uint32_t restarts = 0;  ///< restarts in the current window, this one included
  std::uint32_t max_restarts = 0;
  std::chrono::nanoseconds period{0};
  std::string
      action{};  ///< "restart", "restart in 200ms", "none (temporary: spec removed)", "retry", ...
};

/// One human-readable line (logfmt): `supervisor=app/db child=conn device=#12 incarnation=3
/// event=child_terminated reason="error: std::runtime_error: refused" restarts=2/3
/// period=5000ms action=restart`. `reason` is always quoted, other values when
/// they contain spaces, quotes or '=' (`action="restart in 200ms"`).
[[nodiscard]] std::string format_text(supervisor_event const& e);
/// One JSON object on one line with the same fields (strings escaped).
[[nodiscard]] std::string format_json(supervisor_event const& e);

}  // namespace backplane
