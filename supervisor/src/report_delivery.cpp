// Where a supervisor's events go: the observer and the logger, each shielded
// from the other and from the supervisor.

#include "report_delivery.hpp"

#include "reasons.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>

namespace backplane::detail {

std::shared_ptr<spdlog::logger> default_report_logger() {
  if (auto l = spdlog::get("backplane")) return l;
  try {
    auto l = spdlog::stderr_color_mt("backplane");
    // JSON reports as pure JSON lines, anything else with spdlog's pattern.
    l->set_formatter(make_report_formatter());
    return l;
  } catch (spdlog::spdlog_ex const&) {
    return spdlog::get("backplane");  // another thread registered it first
  }
}

namespace {
void failed(supervisor_event const& e, char const* who, std::uint64_t& failures) noexcept {
  // Told once per supervisor, straight to stderr. Later failures are only
  // counted (supervisor_exit::failed_reports).
  if (failures++ > 0) return;
  try {
    std::string const what = to_string(exception_reason(std::current_exception()));
    std::fprintf(stderr,
                 "backplane: supervisor %s: a report failed in %s (%s); the supervisor goes on, "
                 "later failures are counted in supervisor_exit::failed_reports\n",
                 e.supervisor.c_str(), who, what.c_str());
  } catch (...) {
    std::fputs("backplane: a supervisor's report failed; the supervisor goes on\n", stderr);
  }
}
}  // namespace

void deliver(supervisor_event const& e, spdlog::level::level_enum level, bool log, bool json,
             std::function<void(supervisor_event const&)> const& observer, spdlog::logger& logger,
             std::uint64_t& failures) noexcept {
  if (observer) {
    try {
      observer(e);
    } catch (...) {
      failed(e, "the observer", failures);
    }
  }
  if (log) {
    try {
      logger.log(level, "{}", json ? format_json(e) : format_text(e));
    } catch (...) {
      failed(e, "the logger", failures);
    }
  }
}

}  // namespace backplane::detail
