#pragma once
// Where a supervisor's events go: the observer and the spdlog logger, each
// shielded from the other. Private to src/.

#include <backplane/supervisor/events.hpp>

#include <spdlog/fwd.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace backplane::detail {

/// The spdlog logger "backplane", made on stderr with the report formatter
/// (JSON reports as pure JSON lines) if nobody registered one.
[[nodiscard]] std::shared_ptr<spdlog::logger> default_report_logger();

/// Hands `e` to `observer` (if any) and, if `log`, to `logger` at `level`, as
/// a JSON line when `json`, else as text. Reports are made in the middle of
/// decisions, so nothing thrown here may leave (the supervisor's state would
/// be half-changed and the exception would escape io_context::run()): what the
/// observer, the logger (a sink, or an error handler that rethrows) or the
/// formatting throws is caught; the event still reaches the other one. Each
/// failure is counted in `failures`; the first is told on stderr, naming
/// `path` (the logger may be what fails).
void deliver(supervisor_event const& e, spdlog::level::level_enum level, bool log, bool json,
             std::function<void(supervisor_event const&)> const& observer, spdlog::logger& logger,
             std::uint64_t& failures) noexcept;

}  // namespace backplane::detail
