#pragma once
// supervisor_event: one structured record per supervisor decision, and its
// two renderings (a logfmt line for people, a JSON line for log pipelines).

#include <backplane/device_id.hpp>

#include <spdlog/fwd.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
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

/// How a child ended, or why it could not start or stop: the `kind` field of
/// an event's reason.
enum class reason_kind : std::uint8_t {
  none,              ///< no reason (a `restarted` event)
  clean,             ///< returned normally, or stopped when asked
  exception,         ///< threw: `exception_type`, `message`
  error,             ///< returned an error by value: `message`, `error_category`/`error_code`
                     ///< for an error_code, `error_type` when fmt cannot format it
  cascade,           ///< a linked device faulted: `cascade_from`
  drop,              ///< its device was destroyed while connected
  killed,            ///< cancelled by the supervisor (brutal kill or shutdown timeout)
  start_error,       ///< its start function returned a start_error: `message`
  shutdown_timeout,  ///< did not stop within its shutdown timeout: `message`
  kill_timeout,      ///< ignored the cancellation that followed: `message`
};

/// Why, as typed fields. Which fields are set depends on `kind` (above);
/// the others stay empty.
struct event_reason {
  reason_kind kind = reason_kind::none;
  std::string exception_type{};     ///< exception: the thrown type, demangled
  std::string message{};            ///< what() / the error's text / the start_error's reason
  std::string error_type{};         ///< error: the error's type, when fmt cannot format it
  std::string error_category{};     ///< error: an error_code's category name ("system", ...)
  std::optional<int> error_code{};  ///< error: an error_code's value
  device_id cascade_from{};         ///< cascade: the linked device whose fault spread
  /// exception, when a worker_pool's worker crashed under a job (the cause is a
  /// backplane::job_crashed): the job's sequence number in its pool, and its
  /// routing key when it was submitted with one.
  std::optional<std::uint64_t> job{};
  std::optional<std::string> job_key{};
  friend bool operator==(event_reason const&, event_reason const&) = default;
};

/// What the supervisor does about it: one word.
enum class supervisor_action : std::uint8_t {
  none,        ///< nothing (see the event's note for why)
  restart,     ///< start the child again, after `delay` when there is one
  retry,       ///< a restart's start failed: try again, after `delay` when there is one
  give_up,     ///< restart intensity exceeded: the supervisor stops (an intensity_exceeded follows)
  terminate,   ///< intensity_exceeded: stop every child, end the supervisor with a fault
  fail_start,  ///< the supervisor's own start fails: stop the children it started
  cancel,      ///< the child did not stop when asked: cancel its work
  abandon,     ///< it ignored the cancellation too: unlink it and forget it
  /// A significant child ended by itself (the event's note says by which
  /// rule, any_significant or all_significant): stop the other children and
  /// end cleanly. Logged at info level at least.
  auto_shutdown,
};

[[nodiscard]] std::string_view to_string(supervisor_event_kind k) noexcept;
[[nodiscard]] std::string_view to_string(reason_kind k) noexcept;
[[nodiscard]] std::string_view to_string(supervisor_action a) noexcept;
/// The reason on one line, kind first: "clean", "exception: std::runtime_error:
/// boom", "error: system: No space left on device", "error: disk full",
/// "cascade from #7", ...; a start_error's own reason as it is ("no config").
[[nodiscard]] std::string to_string(event_reason const& r);

/// Everything an operator needs about one decision, as a value. The same
/// record goes to the logger (one line, text or JSON) and to the observer.
struct supervisor_event {
  std::string supervisor{};       ///< path, e.g. "app/db/pool"
  std::string child{};            ///< child id ("" for supervisor-wide events)
  device_id device{};             ///< the incarnation's device (nobody if none)
  std::uint64_t incarnation = 0;  ///< 1 for the first start
  supervisor_event_kind event = supervisor_event_kind::child_terminated;
  event_reason reason{};
  /// Restarts in the current window, this one included: more than
  /// `max_restarts` within `period` ends the supervisor.
  std::uint32_t restarts = 0;
  std::uint32_t max_restarts = 0;
  std::chrono::nanoseconds period{0};
  supervisor_action action = supervisor_action::none;
  /// restart / retry after a backoff: how long until the start.
  std::optional<std::chrono::nanoseconds> delay{};
  /// Why an action is what it is, for people ("temporary: spec removed",
  /// "supervisor stopping", ...); empty if the action says it all. Refers to
  /// static text: it may be kept.
  std::string_view note{};
};

/// The level an event is logged at: err for a crash or a start error, debug
/// for a clean exit, info for `restarted`, warn for `shutdown_error`, critical
/// for `intensity_exceeded`.
[[nodiscard]] spdlog::level::level_enum report_level(supervisor_event_kind kind,
                                                     reason_kind why) noexcept;

/// Current version of the JSON lines' schema (the `schema` field). Grows
/// with incompatible changes only; new fields may appear within a version.
inline constexpr int report_schema_version = 1;

/// One human-readable line (logfmt), durations readable:
/// `supervisor=app/db child=conn device=#12 incarnation=3 event=child_terminated
/// reason="exception: std::runtime_error: refused" restarts="2 of 3 in 5s"
/// action=restart delay=200ms`. `reason` and `restarts` are always quoted,
/// other values when they contain spaces, quotes or '='. A supervisor that
/// gives up shows `restarts="4 > 3 in 5s"`; `note="..."` follows the action
/// when there is one; `job=7 job_key=customer-3` close a pool worker's crash
/// under a job; a `restarted` event has no `reason`.
[[nodiscard]] std::string format_text(supervisor_event const& e);

/// One JSON object, written with Boost.JSON, nothing else on its line (no
/// newline either). `ts` is the given time as RFC 3339 UTC with microseconds,
/// `level` spdlog's name for the event's level. The schema (README, "Crash
/// reports"): ts, level, schema, event, supervisor, child (null for
/// supervisor-wide events), device (integer, null if none), incarnation,
/// restarts, max_restarts, period_ms, action, delay_ms (if any), note (if
/// any), kind, and exception_type, message, error_type, error_category,
/// error_code, cascade_from (integer), job (integer), job_key when set.
[[nodiscard]] std::string format_json(supervisor_event const& e,
                                      std::chrono::system_clock::time_point ts);
/// With `ts` now.
[[nodiscard]] std::string format_json(supervisor_event const& e);

/// "200ms", "1.5s", "250us", "90s": a duration as people write it (at most
/// three significant digits; exact under a millisecond).
[[nodiscard]] std::string readable(std::chrono::nanoseconds d);

/// An spdlog formatter for a logger that carries JSON reports: a message that
/// is a JSON report (it starts with `{"ts":`) is written as it is, one object
/// per line, and anything else through `fallback_pattern` (spdlog's pattern
/// syntax; the default is spdlog's own). The library's default logger uses
/// it; give it to your own logger's sink or logger with
/// `logger->set_formatter(backplane::make_report_formatter())`.
[[nodiscard]] std::unique_ptr<spdlog::formatter> make_report_formatter(
    std::string fallback_pattern = "%+");

}  // namespace backplane
