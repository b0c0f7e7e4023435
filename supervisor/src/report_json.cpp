// The JSON line for log pipelines (Boost.JSON), the level of each event, and
// the spdlog formatter that writes JSON reports as they are.

#include <backplane/supervisor/events.hpp>

#include <fmt/format.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <ctime>

namespace backplane {

spdlog::level::level_enum report_level(supervisor_event_kind kind, reason_kind why) noexcept {
  switch (kind) {
    case supervisor_event_kind::child_terminated:
      return why == reason_kind::clean ? spdlog::level::debug : spdlog::level::err;
    case supervisor_event_kind::restarted: return spdlog::level::info;
    case supervisor_event_kind::shutdown_error: return spdlog::level::warn;
    case supervisor_event_kind::intensity_exceeded: return spdlog::level::critical;
    case supervisor_event_kind::start_error: return spdlog::level::err;
  }
  return spdlog::level::err;
}

namespace {

/// RFC 3339, UTC, microseconds: 2026-11-30T12:34:56.123456Z.
std::string rfc3339(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  auto const us = floor<microseconds>(t.time_since_epoch());
  auto const secs = floor<seconds>(us);
  std::time_t const tt = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (us - secs).count());
}

std::int64_t whole_ms(std::chrono::nanoseconds d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

/// A delay in whole milliseconds, rounded to the nearest (a jittered backoff
/// is not a whole number of them; a millisecond is precision enough for it).
std::int64_t delay_ms(std::chrono::nanoseconds d) {
  return std::chrono::round<std::chrono::milliseconds>(d).count();
}

constexpr std::string_view json_prefix = R"({"ts":)";

/// Writes a JSON report as it is and anything else through a pattern.
class report_formatter final : public spdlog::formatter {
 public:
  explicit report_formatter(std::string pattern)
      : pattern_(std::move(pattern)), fallback_(pattern_) {}
  void format(spdlog::details::log_msg const& msg, spdlog::memory_buf_t& dest) override {
    std::string_view const p(msg.payload.data(), msg.payload.size());
    if (p.substr(0, json_prefix.size()) == json_prefix) {
      dest.append(p.data(), p.data() + p.size());
      dest.push_back('\n');
      return;
    }
    fallback_.format(msg, dest);
  }
  [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<report_formatter>(pattern_);
  }

 private:
  std::string pattern_;
  spdlog::pattern_formatter fallback_;
};

}  // namespace

std::string format_json(supervisor_event const& e, std::chrono::system_clock::time_point ts) {
  // One report's worth of nodes: no heap allocation for the tree itself.
  unsigned char buffer[2048];
  boost::json::monotonic_resource mr(buffer, sizeof buffer);
  boost::json::object o(&mr);
  o.reserve(24);
  o["ts"] = rfc3339(ts);
  auto const level = spdlog::level::to_string_view(report_level(e.event, e.reason.kind));
  o["level"] = boost::json::string_view(level.data(), level.size());
  o["schema"] = report_schema_version;
  o["event"] = to_string(e.event);
  o["supervisor"] = e.supervisor;
  if (e.child.empty()) {
    o["child"] = nullptr;
  } else {
    o["child"] = e.child;
  }
  if (e.device) {
    o["device"] = e.device.value();
  } else {
    o["device"] = nullptr;
  }
  o["incarnation"] = e.incarnation;
  o["kind"] = to_string(e.reason.kind);
  auto const text = [&o](char const* key, std::string const& v) {
    if (!v.empty()) o[key] = v;
  };
  text("exception_type", e.reason.exception_type);
  text("message", e.reason.message);
  text("error_type", e.reason.error_type);
  text("error_category", e.reason.error_category);
  if (e.reason.error_code) o["error_code"] = *e.reason.error_code;
  if (e.reason.cascade_from) o["cascade_from"] = e.reason.cascade_from.value();
  if (e.reason.job) o["job"] = *e.reason.job;
  if (e.reason.job_key) o["job_key"] = *e.reason.job_key;
  o["restarts"] = e.restarts;
  o["max_restarts"] = e.max_restarts;
  o["period_ms"] = whole_ms(e.period);
  o["action"] = to_string(e.action);
  if (e.delay) o["delay_ms"] = delay_ms(*e.delay);
  if (!e.note.empty()) o["note"] = e.note;
  return boost::json::serialize(o);
}

std::string format_json(supervisor_event const& e) {
  return format_json(e, std::chrono::system_clock::now());
}

std::unique_ptr<spdlog::formatter> make_report_formatter(std::string fallback_pattern) {
  return std::make_unique<report_formatter>(std::move(fallback_pattern));
}

}  // namespace backplane
