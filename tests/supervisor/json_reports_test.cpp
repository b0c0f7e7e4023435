// JSON crash reports: one object per line and nothing else on it, every field
// typed, checked by parsing the lines back with Boost.JSON.

#include "supervisor/fixture.hpp"

#include <spdlog/sinks/ostream_sink.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <cerrno>
#include <cstring>
#include <regex>
#include <set>
#include <sstream>

namespace asio = boost::asio;
namespace json = boost::json;
using namespace backplane;
using namespace backplane::test;

namespace json_reports_test {
struct db_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
/// An error type fmt cannot format: reported by its type's name.
struct opaque_error {};
}  // namespace json_reports_test

namespace {

using result = boost::system::result<void, std::string>;

asio::awaitable<result> fails_first(std::uint64_t incarnation) {
  if (incarnation == 1) co_return result(boost::system::in_place_error, "warming up");
  co_await forever();
  co_return result();
}

class JsonReports : public supervisor_fixture {
 protected:
  std::ostringstream out;
  /// A logger as a user would make one for JSON reports: the library's
  /// formatter on an ordinary sink, every level.
  std::shared_ptr<spdlog::logger> json_logger() {
    auto l = std::make_shared<spdlog::logger>(
        "json", std::make_shared<spdlog::sinks::ostream_sink_st>(out));
    l->set_formatter(make_report_formatter());
    l->set_level(spdlog::level::trace);
    return l;
  }
  strings lines() const {
    strings v;
    std::istringstream in(out.str());
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
  }
  /// Every line parsed; a line that is not one JSON object fails the test.
  std::vector<json::object> objects() const {
    std::vector<json::object> v;
    for (auto const& l : lines()) {
      boost::system::error_code ec;
      json::value parsed = json::parse(l, ec);
      EXPECT_FALSE(ec) << ec.message() << ": " << l;
      EXPECT_TRUE(parsed.is_object()) << l;
      if (!ec && parsed.is_object()) v.push_back(parsed.as_object());
    }
    return v;
  }
};

/// The schema, checked on every line: which keys exist and their types.
void check_schema(json::object const& o) {
  static std::set<std::string> const always = {
      "ts",          "level", "schema",   "event",        "supervisor", "child", "device",
      "incarnation", "kind",  "restarts", "max_restarts", "period_ms",  "action"};
  static std::set<std::string> const optional = {"exception_type", "message",    "error_type",
                                                 "error_category", "error_code", "cascade_from",
                                                 "delay_ms",       "note"};
  for (auto const& k : always) EXPECT_TRUE(o.contains(k)) << k << " missing in " << o;
  for (auto const& kv : o) {
    std::string const key(kv.key());
    EXPECT_TRUE(always.count(key) || optional.count(key)) << "unknown key " << key;
  }
  static std::regex const rfc3339(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)");
  ASSERT_TRUE(o.at("ts").is_string());
  EXPECT_TRUE(std::regex_match(std::string(o.at("ts").as_string()), rfc3339)) << o.at("ts");
  static std::set<std::string> const levels = {"debug", "info", "warning", "error", "critical"};
  ASSERT_TRUE(o.at("level").is_string());
  EXPECT_TRUE(levels.count(std::string(o.at("level").as_string()))) << o.at("level");
  EXPECT_TRUE(o.at("schema").is_int64());
  EXPECT_EQ(o.at("schema"), 1);
  EXPECT_TRUE(o.at("event").is_string());
  EXPECT_TRUE(o.at("supervisor").is_string());
  EXPECT_TRUE(o.at("child").is_string() || o.at("child").is_null());
  EXPECT_TRUE(o.at("device").is_int64() || o.at("device").is_null());
  for (char const* k : {"incarnation", "restarts", "max_restarts", "period_ms"}) {
    EXPECT_TRUE(o.at(k).is_int64()) << k;
  }
  EXPECT_TRUE(o.at("kind").is_string());
  EXPECT_TRUE(o.at("action").is_string());
  for (char const* k : {"exception_type", "message", "error_type", "error_category", "note"}) {
    if (o.contains(k)) {
      EXPECT_TRUE(o.at(k).is_string()) << k;
    }
  }
  for (char const* k : {"error_code", "cascade_from", "delay_ms"}) {
    if (o.contains(k)) {
      EXPECT_TRUE(o.at(k).is_int64()) << k;
    }
  }
}

std::string str(json::object const& o, char const* key) {
  auto const* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string("<absent>");
}

TEST_F(JsonReports, FormatOfOneEvent) {
  supervisor_event e;
  e.supervisor = "app";
  e.child = "w\"1";
  e.incarnation = 1;
  e.event = supervisor_event_kind::start_error;
  e.reason.kind = reason_kind::start_error;
  e.reason.message = "bad\\path\t\x01";
  e.restarts = 0;
  e.max_restarts = 3;
  e.period = 1500ms;
  e.action = supervisor_action::retry;
  e.delay = 11'805'819ns;
  // 2026-11-30T12:34:56.789012Z
  auto const ts =
      std::chrono::system_clock::time_point(std::chrono::microseconds(1'796'042'096'789'012));
  std::string const line = format_json(e, ts);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(
      line,
      R"({"ts":"2026-11-30T12:34:56.789012Z","level":"error","schema":1,"event":"start_error",)"
      R"("supervisor":"app","child":"w\"1","device":null,"incarnation":1,"kind":"start_error",)"
      R"("message":"bad\\path\t\u0001","restarts":0,"max_restarts":3,"period_ms":1500,)"
      R"("action":"retry","delay_ms":12})");
}

TEST_F(JsonReports, DefaultLoggerWritesPureJsonLines) {
  // The formatter the library's own "backplane" logger uses: JSON reports as
  // they are, anything else through spdlog's pattern.
  auto l = json_logger();
  l->info("hello");
  supervisor_event e;
  e.supervisor = "app";
  l->error("{}", format_json(e));
  auto const v = lines();
  ASSERT_EQ(v.size(), 2u);
  EXPECT_NE(v[0].find("[json] [info] hello"), std::string::npos) << v[0];
  EXPECT_EQ(v[1].rfind(R"({"ts":")", 0), 0u) << v[1];
  EXPECT_EQ(v[1].back(), '}');
}

// A crash storm: many children ending every way there is, an error returned
// by value of each kind, cascades, start failures with backoff, a child that
// ignores its shutdown, then intensity exceeded. Every line is parsed back
// and checked field by field.
TEST_F(JsonReports, CrashStormParsesBackFieldByField) {
  device dep;
  device_id const dep_id = dep.id();
  auto s = spec("app");
  s.logger = json_logger();
  s.format = report_format::json;
  s.max_restarts = 12;
  s.period = 10s;
  s.children.push_back(worker("thrower", [](child_context& c) -> asio::awaitable<void> {
    if (c.incarnation == 1) throw json_reports_test::db_error("refused");
    co_await manage(std::move(c.device), forever_result());
  }));
  s.children.push_back(worker("text", [](child_context& c) -> asio::awaitable<result> {
    if (c.incarnation == 1) co_return result(boost::system::in_place_error, "disk full");
    co_await forever();
    co_return result();
  }));
  s.children.push_back(worker(
      "code",
      [](child_context& c)
          -> asio::awaitable<boost::system::result<void, boost::system::error_code>> {
        if (c.incarnation == 1)
          co_return boost::system::errc::make_error_code(boost::system::errc::no_space_on_device);
        co_await forever();
        co_return boost::system::result<void, boost::system::error_code>();
      }));
  s.children.push_back(
      worker("opaque",
             [](child_context& c)
                 -> asio::awaitable<boost::system::result<void, json_reports_test::opaque_error>> {
               if (c.incarnation == 1) co_return json_reports_test::opaque_error{};
               co_await forever();
               co_return boost::system::result<void, json_reports_test::opaque_error>();
             }));
  s.children.push_back(kids.spec("cascaded", restart_type::permanent, dep.line()));
  s.children.push_back(kids.spec("quitter", restart_type::transient));
  // Fails once, then cannot start once (a retry after its backoff), then runs.
  auto flaky = worker("flaky", [](child_context& c) -> start_result {
    if (c.incarnation == 2) return start_error{"no config yet"};
    return fails_first(c.incarnation);
  });
  flaky.backoff = backoff_policy{.initial = 200ms, .max = 1s, .multiplier = 2.0, .jitter = 0.0};
  s.children.push_back(flaky);
  auto stubborn = worker("stubborn", [](device&) -> asio::awaitable<void> { co_await forever(); });
  stubborn.shutdown = shutdown_policy::timeout(10ms);
  s.children.push_back(stubborn);
  auto sup = start(std::move(s));

  dep.disconnect(fault::error());
  kids.end("quitter", ending::clean);
  idle();
  clock->advance(200ms);  // flaky's restart: fails to start
  idle();
  clock->advance(400ms);  // its retry: runs
  idle();
  // Then crashes until one is too many.
  for (int i = 0; i < 12 && of_kind(supervisor_event_kind::intensity_exceeded).empty(); ++i) {
    kids.end("cascaded", ending::exception);
    idle();
  }
  clock->advance(10ms);  // the stubborn child's shutdown timeout
  idle();
  ASSERT_TRUE(ended(sup));

  auto const objs = objects();
  ASSERT_EQ(objs.size(), lines().size());
  ASSERT_GT(objs.size(), 20u);
  std::map<std::string, std::vector<json::object>> terminated;  // by child
  std::vector<json::object> restarted, start_errors, shutdown_errors, intensity;
  for (auto const& o : objs) {
    check_schema(o);
    EXPECT_EQ(o.at("supervisor"), "app");
    EXPECT_EQ(o.at("max_restarts"), 12);
    EXPECT_EQ(o.at("period_ms"), 10000);
    std::string const ev = str(o, "event");
    if (ev == "child_terminated") {
      terminated[str(o, "child")].push_back(o);
    } else if (ev == "restarted") {
      restarted.push_back(o);
    } else if (ev == "start_error") {
      start_errors.push_back(o);
    } else if (ev == "shutdown_error") {
      shutdown_errors.push_back(o);
    } else if (ev == "intensity_exceeded") {
      intensity.push_back(o);
    } else {
      ADD_FAILURE() << "unexpected event " << o;
    }
  }

  auto const first = [&](std::string const& child) -> json::object {
    auto const& v = terminated[child];
    if (v.empty()) {
      ADD_FAILURE() << "no child_terminated for " << child;
      return {};
    }
    return v.front();
  };
  {
    auto const o = first("thrower");
    EXPECT_EQ(o.at("level"), "error");
    EXPECT_EQ(o.at("kind"), "exception");
    EXPECT_EQ(o.at("exception_type"), "json_reports_test::db_error");
    EXPECT_EQ(o.at("message"), "refused");
    EXPECT_EQ(o.at("action"), "restart");
    EXPECT_EQ(o.at("incarnation"), 1);
    EXPECT_TRUE(o.at("device").is_int64());
    EXPECT_FALSE(o.contains("delay_ms"));
    EXPECT_FALSE(o.contains("error_category"));
  }
  {
    auto const o = first("text");
    EXPECT_EQ(o.at("kind"), "error");
    EXPECT_EQ(o.at("message"), "disk full");
    EXPECT_FALSE(o.contains("exception_type"));
    EXPECT_FALSE(o.contains("error_category"));
  }
  {
    auto const o = first("code");
    EXPECT_EQ(o.at("kind"), "error");
    EXPECT_EQ(o.at("error_category"), "generic");
    EXPECT_EQ(o.at("error_code"), ENOSPC);
    EXPECT_EQ(o.at("message"), std::strerror(ENOSPC));
  }
  {
    auto const o = first("opaque");
    EXPECT_EQ(o.at("kind"), "error");
    EXPECT_EQ(o.at("error_type"), "json_reports_test::opaque_error");
    EXPECT_FALSE(o.contains("message"));
  }
  {
    auto const o = first("cascaded");
    EXPECT_EQ(o.at("kind"), "cascade");
    EXPECT_EQ(o.at("cascade_from"), static_cast<std::int64_t>(dep_id.value()));
    EXPECT_EQ(o.at("action"), "restart");
  }
  {
    auto const o = first("quitter");
    EXPECT_EQ(o.at("level"), "debug");
    EXPECT_EQ(o.at("kind"), "clean");
    EXPECT_EQ(o.at("action"), "none");
    EXPECT_EQ(o.at("note"), "transient, exited cleanly");
  }
  {
    auto const o = first("flaky");
    EXPECT_EQ(o.at("kind"), "error");
    EXPECT_EQ(o.at("message"), "warming up");
    EXPECT_EQ(o.at("action"), "restart");
    EXPECT_EQ(o.at("delay_ms"), 200);
  }
  ASSERT_EQ(start_errors.size(), 1u);
  EXPECT_EQ(start_errors[0].at("child"), "flaky");
  EXPECT_EQ(start_errors[0].at("kind"), "start_error");
  EXPECT_EQ(start_errors[0].at("message"), "no config yet");
  EXPECT_EQ(start_errors[0].at("device"), nullptr);
  EXPECT_EQ(start_errors[0].at("action"), "retry");
  EXPECT_EQ(start_errors[0].at("delay_ms"), 400);

  // The crash that was one too many, then the supervisor's own event.
  auto const& last = terminated["cascaded"].back();
  EXPECT_EQ(last.at("action"), "give_up");
  EXPECT_EQ(last.at("restarts"), 13);
  ASSERT_EQ(intensity.size(), 1u);
  EXPECT_EQ(intensity[0].at("level"), "critical");
  EXPECT_EQ(intensity[0].at("action"), "terminate");
  EXPECT_EQ(intensity[0].at("restarts"), 13);
  EXPECT_EQ(intensity[0].at("kind"), "exception");
  EXPECT_EQ(intensity[0].at("exception_type"), "std::runtime_error");

  ASSERT_EQ(shutdown_errors.size(), 1u);
  EXPECT_EQ(shutdown_errors[0].at("child"), "stubborn");
  EXPECT_EQ(shutdown_errors[0].at("level"), "warning");
  EXPECT_EQ(shutdown_errors[0].at("kind"), "shutdown_timeout");
  EXPECT_EQ(shutdown_errors[0].at("message"), "did not stop within 10ms of the shutdown request");
  EXPECT_EQ(shutdown_errors[0].at("action"), "cancel");

  // One restarted per restart made, each with its new incarnation.
  for (auto const& o : restarted) {
    EXPECT_EQ(o.at("level"), "info");
    EXPECT_EQ(o.at("kind"), "none");
    EXPECT_EQ(o.at("action"), "none");
    EXPECT_GE(o.at("incarnation").as_int64(), 2);
  }
  // The observer saw the same events, in the same order.
  ASSERT_EQ(events.size(), objs.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(to_string(events[i].event), str(objs[i], "event")) << i;
    EXPECT_EQ(to_string(events[i].reason.kind), str(objs[i], "kind")) << i;
  }
}

}  // namespace
