// Crash reports: the event's fields, the text and JSON lines, the log levels
// (clean exits are quiet), the user's own spdlog logger, the observer.

#include "supervisor/fixture.hpp"

#include <spdlog/sinks/ostream_sink.h>

#include <sstream>

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;

namespace reports_test {
struct db_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
}  // namespace reports_test

namespace {

class Reports : public supervisor_fixture {
 protected:
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> text_logger() {
    auto l = std::make_shared<spdlog::logger>(
        "captured", std::make_shared<spdlog::sinks::ostream_sink_st>(out));
    l->set_pattern("%l|%v");
    l->set_level(spdlog::level::info);
    return l;
  }
  strings lines() const {
    strings v;
    std::istringstream in(out.str());
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
  }
};

TEST_F(Reports, CrashEventFields) {
  auto s = spec("app");
  s.max_restarts = 3;
  s.period = 5s;
  s.children = {worker("db", [](child_context& c) -> asio::awaitable<void> {
    if (c.incarnation == 1) throw reports_test::db_error("refused");
    co_await manage(std::move(c.device), forever_result());
  })};
  auto sup = supervisor::start(ctx.get_executor(), std::move(s));
  ASSERT_TRUE(sup);
  idle();
  ASSERT_EQ(events.size(), 2u);
  auto const& t = events[0];
  EXPECT_EQ(t.supervisor, "app");
  EXPECT_EQ(t.child, "db");
  EXPECT_TRUE(t.device);
  EXPECT_EQ(t.incarnation, 1u);
  EXPECT_EQ(t.event, supervisor_event_kind::child_terminated);
  EXPECT_EQ(t.reason, "error: reports_test::db_error: refused");
  EXPECT_EQ(t.restarts, 1u);
  EXPECT_EQ(t.max_restarts, 3u);
  EXPECT_EQ(t.period, 5s);
  EXPECT_EQ(t.action, "restart");
  auto const& r = events[1];
  EXPECT_EQ(r.event, supervisor_event_kind::restarted);
  EXPECT_EQ(r.child, "db");
  EXPECT_EQ(r.incarnation, 2u);
  EXPECT_EQ(r.device, info(*sup, "db")->device);
  EXPECT_NE(r.device, t.device);
  EXPECT_EQ(r.reason, "");
  EXPECT_EQ(r.action, "running");
  stop(*sup);
}

TEST_F(Reports, ReasonsForEveryKindOfEnd) {
  device dep;
  device_id const dep_id = dep.id();
  auto s = spec();
  s.max_restarts = 100;
  s.children = {
      kids.spec("err"), kids.spec("exc"), kids.spec("cas", restart_type::permanent, dep.line()),
      worker("int",
             [](child_context& c) -> asio::awaitable<void> {
               if (c.incarnation == 1) throw 42;
               co_await manage(std::move(c.device), forever_result());
             }),
      worker("drop",
             [](child_context& c) -> asio::awaitable<void> {
               if (c.incarnation == 1) {
                 device gone = std::move(c.device);  // destroyed while connected: a drop
                 co_return;
               }
               co_await manage(std::move(c.device), forever_result());
             }),
      // The usual shape: the run is manage, the work throws, manage catches
      // it and the run returns normally. The report still names the exception.
      worker("managed", [](child_context& c) -> asio::awaitable<void> {
        auto work = [](std::uint64_t inc) -> asio::awaitable<boost::system::result<void, int>> {
          if (inc == 1) throw reports_test::db_error("pool exhausted");
          co_await forever();
          co_return boost::system::result<void, int>();
        };
        (void)co_await manage(std::move(c.device), work(c.incarnation));
      })};
  auto sup = start(std::move(s));
  kids.end("err", ending::error);
  kids.end("exc", ending::exception);
  dep.disconnect(fault::error());
  idle();
  std::map<std::string, std::string> reason;
  for (auto const& e : of_kind(supervisor_event_kind::child_terminated))
    if (e.incarnation == 1) reason[e.child] = e.reason;
  EXPECT_EQ(reason["err"], "error");
  EXPECT_EQ(reason["exc"], "error: std::runtime_error: boom");
  EXPECT_EQ(reason["cas"], "cascade from " + to_string(dep_id));
  EXPECT_EQ(reason["int"], "error: int");
  EXPECT_EQ(reason["drop"], "drop: the child's device was destroyed while connected");
  EXPECT_EQ(reason["managed"], "error: reports_test::db_error: pool exhausted");
  stop(sup);
}

TEST_F(Reports, TextFormat) {
  supervisor_event e;
  e.supervisor = "app/db";
  e.child = "conn";
  e.incarnation = 3;
  e.event = supervisor_event_kind::child_terminated;
  e.reason = "error: std::runtime_error: refused";
  e.restarts = 2;
  e.max_restarts = 3;
  e.period = 5s;
  e.action = "restart";
  EXPECT_EQ(format_text(e),
            "supervisor=app/db child=conn device=none incarnation=3 event=child_terminated "
            "reason=\"error: std::runtime_error: refused\" restarts=2/3 period=5000ms "
            "action=restart");
  device d;
  e.device = d.id();
  e.action = "restart in 200ms";
  e.child = "";
  e.event = supervisor_event_kind::intensity_exceeded;
  e.reason = "say \"hi\"\n";
  EXPECT_EQ(format_text(e), fmt::format("supervisor=app/db child=- device={} incarnation=3 "
                                        "event=intensity_exceeded reason=\"say \\\"hi\\\"\\n\" "
                                        "restarts=2/3 period=5000ms action=\"restart in 200ms\"",
                                        d.id()));
}

TEST_F(Reports, JsonFormat) {
  supervisor_event e;
  e.supervisor = "app";
  e.child = "w\"1";
  e.incarnation = 1;
  e.event = supervisor_event_kind::start_error;
  e.reason = "bad\\path\t\x01";
  e.restarts = 0;
  e.max_restarts = 3;
  e.period = 1500ms;
  e.action = "retry";
  EXPECT_EQ(format_json(e),
            "{\"supervisor\":\"app\",\"child\":\"w\\\"1\",\"device\":\"none\",\"incarnation\":1,"
            "\"event\":\"start_error\",\"reason\":\"bad\\\\path\\t\\u0001\",\"restarts\":0,"
            "\"max_restarts\":3,\"period_ms\":1500,\"action\":\"retry\"}");
}

TEST_F(Reports, EventKindNames) {
  EXPECT_EQ(to_string(supervisor_event_kind::child_terminated), "child_terminated");
  EXPECT_EQ(to_string(supervisor_event_kind::start_error), "start_error");
  EXPECT_EQ(to_string(supervisor_event_kind::shutdown_error), "shutdown_error");
  EXPECT_EQ(to_string(supervisor_event_kind::intensity_exceeded), "intensity_exceeded");
  EXPECT_EQ(to_string(supervisor_event_kind::restarted), "restarted");
}

TEST_F(Reports, UserLoggerGetsOneLinePerDecision) {
  auto s = spec("app");
  s.logger = text_logger();
  s.max_restarts = 1;
  s.children = {kids.spec("a"), kids.spec("q", restart_type::transient)};
  auto sup = start(std::move(s));
  kids.end("q", ending::clean);  // quiet: a clean exit is logged at debug
  idle();
  EXPECT_TRUE(lines().empty()) << out.str();
  kids.end("a", ending::error);
  idle();
  auto l = lines();
  ASSERT_EQ(l.size(), 2u) << out.str();
  EXPECT_EQ(l[0].rfind("error|supervisor=app child=a device=", 0), 0u) << l[0];
  EXPECT_NE(l[0].find("event=child_terminated reason=\"error\" restarts=1/1"), std::string::npos);
  EXPECT_EQ(l[1].rfind("info|supervisor=app child=a", 0), 0u) << l[1];
  EXPECT_NE(l[1].find("event=restarted"), std::string::npos);
  kids.end("a", ending::error);
  idle();
  l = lines();
  ASSERT_EQ(l.size(), 4u) << out.str();
  EXPECT_EQ(l[3].rfind("critical|", 0), 0u) << l[3];
  EXPECT_NE(l[3].find("event=intensity_exceeded"), std::string::npos);
  // Every event went to the observer as well, the clean exit included.
  EXPECT_EQ(events.size(), 5u);
}

TEST_F(Reports, CleanExitsShowAtDebug) {
  auto s = spec();
  auto l = text_logger();
  l->set_level(spdlog::level::debug);
  s.logger = l;
  s.children = {kids.spec("q", restart_type::transient)};
  auto sup = start(std::move(s));
  kids.end("q", ending::clean);
  idle();
  auto v = lines();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].rfind("debug|", 0), 0u);
  EXPECT_NE(v[0].find("reason=\"clean\""), std::string::npos);
  stop(sup);
}

TEST_F(Reports, JsonLinesOnRequest) {
  auto s = spec("app");
  auto l = text_logger();
  l->set_pattern("%v");
  s.logger = l;
  s.format = report_format::json;
  s.children = {kids.spec("a")};
  auto sup = start(std::move(s));
  kids.end("a", ending::exception);
  idle();
  auto v = lines();
  ASSERT_EQ(v.size(), 2u);
  for (auto const& line : v) {
    EXPECT_EQ(line.front(), '{');
    EXPECT_EQ(line.back(), '}');
  }
  EXPECT_NE(v[0].find("\"event\":\"child_terminated\",\"reason\":\"error: std::runtime_error: "
                      "boom\""),
            std::string::npos)
      << v[0];
  EXPECT_NE(v[1].find("\"event\":\"restarted\""), std::string::npos);
  stop(sup);
}

TEST_F(Reports, DefaultLoggerIsTheBackplaneOne) {
  // With no logger given, reports go to the spdlog logger named "backplane".
  auto mine = std::make_shared<spdlog::logger>(
      "backplane", std::make_shared<spdlog::sinks::ostream_sink_st>(out));
  mine->set_pattern("%v");
  spdlog::drop("backplane");
  spdlog::register_logger(mine);
  auto s = spec();
  s.logger = nullptr;
  s.children = {kids.spec("a")};
  auto sup = start(std::move(s));
  kids.end("a", ending::error);
  idle();
  stop(sup);
  spdlog::drop("backplane");
  EXPECT_EQ(lines().size(), 2u) << out.str();
}

TEST_F(Reports, ShutdownAndStartErrorsAreReported) {
  auto s = spec("app");
  s.logger = text_logger();
  auto slow = worker("slow", [](device&) -> asio::awaitable<void> { co_await forever(); });
  slow.shutdown = shutdown_policy::timeout(10ms);
  s.children = {slow};
  auto sup = start(std::move(s));
  auto r = start_child(
      sup, worker("bad", [](device&) -> start_result { throw std::logic_error("misconfigured"); }));
  EXPECT_EQ(r.ec, supervisor_errc::start_failed);
  sup.async_stop([](auto, auto) {});
  idle();
  clock->advance(10ms);
  idle();
  auto v = lines();
  ASSERT_EQ(v.size(), 2u) << out.str();
  EXPECT_EQ(v[0].rfind("error|supervisor=app child=bad device=none incarnation=1 "
                       "event=start_error reason=\"exception: std::logic_error: misconfigured\"",
                       0),
            0u)
      << v[0];
  EXPECT_NE(v[0].find("action=\"none (start_child: spec discarded)\""), std::string::npos);
  EXPECT_EQ(v[1].rfind("warning|supervisor=app child=slow", 0), 0u) << v[1];
  EXPECT_NE(v[1].find("event=shutdown_error reason=\"did not stop within 10ms of the shutdown "
                      "request\""),
            std::string::npos);
}

}  // namespace
