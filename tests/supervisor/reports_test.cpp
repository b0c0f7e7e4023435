// Crash reports: the event's fields, the text line, the log levels (clean
// exits are quiet), the user's own spdlog logger, the observer, and reports
// that fail (an observer or a logger that throws). JSON lines are in
// json_reports_test.cpp, errors returned by value in returned_error_test.cpp.

#include "supervisor/fixture.hpp"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/sinks/sink.h>

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
  EXPECT_EQ(t.reason.kind, reason_kind::exception);
  EXPECT_EQ(t.reason.exception_type, "reports_test::db_error");
  EXPECT_EQ(t.reason.message, "refused");
  EXPECT_EQ(t.reason.error_category, "");
  EXPECT_FALSE(t.reason.error_code);
  EXPECT_FALSE(t.reason.cascade_from);
  EXPECT_EQ(to_string(t.reason), "exception: reports_test::db_error: refused");
  EXPECT_EQ(t.restarts, 1u);
  EXPECT_EQ(t.max_restarts, 3u);
  EXPECT_EQ(t.period, 5s);
  EXPECT_EQ(t.action, supervisor_action::restart);
  EXPECT_FALSE(t.delay);
  EXPECT_EQ(t.note, "");
  auto const& r = events[1];
  EXPECT_EQ(r.event, supervisor_event_kind::restarted);
  EXPECT_EQ(r.child, "db");
  EXPECT_EQ(r.incarnation, 2u);
  EXPECT_EQ(r.device, info(*sup, "db")->device);
  EXPECT_NE(r.device, t.device);
  EXPECT_EQ(r.reason, event_reason{});
  EXPECT_EQ(r.action, supervisor_action::none);
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
  std::map<std::string, event_reason> reason;
  for (auto const& e : of_kind(supervisor_event_kind::child_terminated))
    if (e.incarnation == 1) reason[e.child] = e.reason;
  // A run under part_manage reports what its work returned, as a managed
  // work does (returned_error_test): the core describes it in the cause.
  EXPECT_EQ(to_string(reason["err"]), "error: 7");
  EXPECT_EQ(to_string(reason["exc"]), "exception: std::runtime_error: boom");
  EXPECT_EQ(reason["cas"].kind, reason_kind::cascade);
  EXPECT_EQ(reason["cas"].cascade_from, dep_id);
  EXPECT_EQ(to_string(reason["cas"]), "cascade from " + to_string(dep_id));
  EXPECT_EQ(to_string(reason["int"]), "exception: int");
  EXPECT_EQ(reason["int"].exception_type, "int");
  EXPECT_EQ(reason["int"].message, "");
  EXPECT_EQ(to_string(reason["drop"]), "drop: the child's device was destroyed while connected");
  EXPECT_EQ(to_string(reason["managed"]), "exception: reports_test::db_error: pool exhausted");
  stop(sup);
}

TEST_F(Reports, TextFormat) {
  supervisor_event e;
  e.supervisor = "app/db";
  e.child = "conn";
  e.incarnation = 3;
  e.event = supervisor_event_kind::child_terminated;
  e.reason.kind = reason_kind::exception;
  e.reason.exception_type = "std::runtime_error";
  e.reason.message = "refused";
  e.restarts = 2;
  e.max_restarts = 3;
  e.period = 5s;
  e.action = supervisor_action::restart;
  EXPECT_EQ(format_text(e),
            "supervisor=app/db child=conn device=none incarnation=3 event=child_terminated "
            "reason=\"exception: std::runtime_error: refused\" restarts=\"2 of 3 in 5s\" "
            "action=restart");
  device d;
  e.device = d.id();
  e.delay = 11'805'819ns;
  e.child = "";
  e.event = supervisor_event_kind::intensity_exceeded;
  e.reason = event_reason{};
  e.reason.kind = reason_kind::shutdown_timeout;
  e.reason.message = "say \"hi\"\n";
  e.restarts = 4;
  e.period = 1500ms;
  e.action = supervisor_action::retry;
  e.note = "a note";
  EXPECT_EQ(format_text(e), fmt::format("supervisor=app/db child=- device={} incarnation=3 "
                                        "event=intensity_exceeded reason=\"shutdown_timeout: say "
                                        "\\\"hi\\\"\\n\" restarts=\"4 > 3 in 1.5s\" "
                                        "action=retry delay=11.8ms note=\"a note\"",
                                        d.id()));
}

TEST_F(Reports, GivingUpReadsRight) {
  // The intensity_exceeded line says how far over the limit it went.
  auto s = spec("app");
  s.logger = text_logger();
  s.max_restarts = 3;
  s.period = 5s;
  s.children = {kids.spec("a")};
  auto sup = start(std::move(s));
  for (int i = 0; i < 4; ++i) {
    kids.end("a", ending::error);
    idle();
  }
  auto const v = lines();
  ASSERT_FALSE(v.empty());
  EXPECT_EQ(v.back().rfind("critical|", 0), 0u) << v.back();
  EXPECT_NE(v.back().find("event=intensity_exceeded reason=\"error: 7\" restarts=\"4 > 3 in 5s\" "
                          "action=terminate"),
            std::string::npos)
      << v.back();
  auto const term = of_kind(supervisor_event_kind::child_terminated);
  ASSERT_EQ(term.size(), 4u);
  EXPECT_EQ(term[2].restarts, 3u);
  EXPECT_EQ(term[3].restarts, 4u);
  EXPECT_EQ(term[3].action, supervisor_action::give_up);
}

TEST_F(Reports, ReadableDurations) {
  EXPECT_EQ(readable(0ns), "0s");
  EXPECT_EQ(readable(3ns), "3ns");
  EXPECT_EQ(readable(1500ns), "1.5us");
  EXPECT_EQ(readable(250us), "250us");
  EXPECT_EQ(readable(200ms), "200ms");
  EXPECT_EQ(readable(11'805'819ns), "11.8ms");
  EXPECT_EQ(readable(1'234'567ns), "1.23ms");
  EXPECT_EQ(readable(1500ms), "1.5s");
  EXPECT_EQ(readable(5s), "5s");
  EXPECT_EQ(readable(3600s), "3600s");
  EXPECT_EQ(readable(-200ms), "-200ms");
}

TEST_F(Reports, NamesOfReasonsAndActions) {
  EXPECT_EQ(to_string(reason_kind::none), "none");
  EXPECT_EQ(to_string(reason_kind::clean), "clean");
  EXPECT_EQ(to_string(reason_kind::exception), "exception");
  EXPECT_EQ(to_string(reason_kind::error), "error");
  EXPECT_EQ(to_string(reason_kind::cascade), "cascade");
  EXPECT_EQ(to_string(reason_kind::drop), "drop");
  EXPECT_EQ(to_string(reason_kind::killed), "killed");
  EXPECT_EQ(to_string(reason_kind::start_error), "start_error");
  EXPECT_EQ(to_string(reason_kind::shutdown_timeout), "shutdown_timeout");
  EXPECT_EQ(to_string(reason_kind::kill_timeout), "kill_timeout");
  EXPECT_EQ(to_string(supervisor_action::none), "none");
  EXPECT_EQ(to_string(supervisor_action::restart), "restart");
  EXPECT_EQ(to_string(supervisor_action::retry), "retry");
  EXPECT_EQ(to_string(supervisor_action::give_up), "give_up");
  EXPECT_EQ(to_string(supervisor_action::terminate), "terminate");
  EXPECT_EQ(to_string(supervisor_action::fail_start), "fail_start");
  EXPECT_EQ(to_string(supervisor_action::cancel), "cancel");
  EXPECT_EQ(to_string(supervisor_action::abandon), "abandon");
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
  EXPECT_NE(l[0].find("event=child_terminated reason=\"error: 7\" restarts=\"1 of 1 in 5s\" "
                      "action=restart"),
            std::string::npos)
      << l[0];
  EXPECT_EQ(l[1].rfind("info|supervisor=app child=a", 0), 0u) << l[1];
  EXPECT_NE(l[1].find("event=restarted restarts=\"1 of 1 in 5s\" action=none"), std::string::npos)
      << l[1];
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
  EXPECT_NE(v[0].find("action=none note=\"start_child: spec discarded\""), std::string::npos)
      << v[0];
  EXPECT_EQ(v[1].rfind("warning|supervisor=app child=slow", 0), 0u) << v[1];
  EXPECT_NE(v[1].find("event=shutdown_error reason=\"shutdown_timeout: did not stop within 10ms "
                      "of the shutdown request\""),
            std::string::npos)
      << v[1];
}

// A report that fails must cost nothing but itself: no exception out of
// io_context::run(), no decision half-made, no event lost for the other
// listener. The first failure is told on stderr; the exit counts them all.
TEST_F(Reports, ObserverThatThrowsLosesNothing) {
  auto s = spec("app");
  s.logger = text_logger();
  int seen = 0;
  s.observer = [&seen](supervisor_event const&) {
    ++seen;
    throw std::runtime_error("observer bug");
  };
  s.max_restarts = 10;
  s.children = {kids.spec("a")};
  testing::internal::CaptureStderr();
  auto sup = start(std::move(s));
  for (int i = 0; i < 3; ++i) {
    kids.end("a", ending::error);
    idle();  // an exception escaping run() would fail here
  }
  auto const err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(seen, 6);              // 3 x (child_terminated, restarted)
  EXPECT_EQ(lines().size(), 6u);   // the logger still got every one
  EXPECT_EQ(kids.starts["a"], 4);  // and every restart was made
  EXPECT_NE(err.find("backplane: supervisor app: a report failed in the observer "
                     "(exception: std::runtime_error: observer bug)"),
            std::string::npos)
      << err;
  EXPECT_EQ(err.find("backplane:", 1), std::string::npos) << "told once: " << err;
  auto const e = stop(sup);
  EXPECT_EQ(e.failed_reports, 6u);
}

/// A sink that throws on every message, as a full disk or a bug might.
class throwing_sink final : public spdlog::sinks::sink {
 public:
  void log(spdlog::details::log_msg const&) override { throw std::runtime_error("disk full"); }
  void flush() override {}
  void set_pattern(std::string const&) override {}
  void set_formatter(std::unique_ptr<spdlog::formatter>) override {}
};

TEST_F(Reports, LoggerThatThrowsLosesNothing) {
  // spdlog hands a sink's exception to the logger's error handler; one that
  // rethrows reaches the supervisor, which must keep it.
  auto l = std::make_shared<spdlog::logger>("throwing", std::make_shared<throwing_sink>());
  l->set_error_handler([](std::string const& msg) { throw std::runtime_error(msg); });
  auto s = spec("app");
  s.logger = l;
  s.children = {kids.spec("a")};
  testing::internal::CaptureStderr();
  auto sup = start(std::move(s));
  kids.end("a", ending::error);
  idle();
  kids.end("a", ending::exception);
  idle();
  auto const err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(of_kind(supervisor_event_kind::child_terminated).size(), 2u);  // the observer's
  EXPECT_EQ(kids.starts["a"], 3);
  EXPECT_NE(err.find("a report failed in the logger"), std::string::npos) << err;
  auto const e = stop(sup);
  EXPECT_EQ(e.failed_reports, 4u);
}

}  // namespace
