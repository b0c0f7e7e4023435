// What async_start_child and async_restart_child tell their caller: the
// reason a start failed, in the report's typed fields, and the info a start
// function attached (OTP's {error, Reason} and {ok, Pid, Info}).

#include "supervisor/fixture.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;

namespace {

using StartAnswer = supervisor_fixture;

child_spec throwing(std::string id) {
  return worker(std::move(id),
                [](device&) -> start_result { throw std::runtime_error("no config"); });
}

TEST_F(StartAnswer, ThrownReasonReachesTheCallerOfStartChild) {
  auto sup = start(spec());
  auto r = start_child(sup, throwing("a"));
  EXPECT_EQ(r.ec, supervisor_errc::start_failed);
  EXPECT_FALSE(r.value.device);
  ASSERT_TRUE(r.value.reason);
  EXPECT_EQ(r.value.reason->kind, reason_kind::exception);
  EXPECT_EQ(r.value.reason->exception_type, "std::runtime_error");
  EXPECT_EQ(r.value.reason->message, "no config");
  // The same typed reason as the start_error report.
  auto errs = of_kind(supervisor_event_kind::start_error);
  ASSERT_EQ(errs.size(), 1u);
  ASSERT_TRUE(r.value.reason);
  EXPECT_EQ(errs[0].reason, *r.value.reason);
  stop(sup);
}

TEST_F(StartAnswer, StartErrorByValueReachesTheCaller) {
  auto sup = start(spec());
  auto r = start_child(
      sup, worker("a", [](device&) -> start_result { return start_error{"port 80 taken"}; }));
  EXPECT_EQ(r.ec, supervisor_errc::start_failed);
  ASSERT_TRUE(r.value.reason);
  EXPECT_EQ(r.value.reason->kind, reason_kind::start_error);
  EXPECT_EQ(r.value.reason->message, "port 80 taken");
  stop(sup);
}

TEST_F(StartAnswer, RestartChildFailureKeepsTheSpecAndSaysWhy) {
  auto fail = std::make_shared<bool>(false);
  child_spec a = kids.spec("a");
  a.start = [fail, inner = a.start](child_context& c) -> start_result {
    if (*fail) throw std::invalid_argument("bad port");
    return inner(c);
  };
  auto s = spec();
  s.children = {a};
  auto sup = start(std::move(s));
  EXPECT_FALSE(terminate_child(sup, "a"));
  *fail = true;
  auto r = restart_child(sup, "a");
  EXPECT_EQ(r.ec, supervisor_errc::start_failed);
  ASSERT_TRUE(r.value.reason);
  EXPECT_EQ(r.value.reason->kind, reason_kind::exception);
  EXPECT_EQ(r.value.reason->exception_type, "std::invalid_argument");
  EXPECT_EQ(r.value.reason->message, "bad port");
  EXPECT_TRUE(info(sup, "a"));
  *fail = false;
  auto ok = restart_child(sup, "a");
  EXPECT_FALSE(ok.ec);
  EXPECT_FALSE(ok.value.reason);
  EXPECT_TRUE(ok.value.device);
  stop(sup);
}

TEST_F(StartAnswer, InfoTravelsWithTheDevice) {
  // OTP's {ok, Pid, Info} (supervisor_SUITE extra_return).
  auto sup = start(spec());
  child_spec c = kids.spec("a");
  c.start = [inner = c.start](child_context& ctx) -> start_result {
    return inner(ctx).with_info(std::string("listening on 8080"));
  };
  auto r = start_child(sup, c);
  ASSERT_FALSE(r.ec);
  EXPECT_TRUE(r.value.device);
  auto const* text = std::any_cast<std::string>(&r.value.info);
  ASSERT_TRUE(text);
  EXPECT_EQ(*text, "listening on 8080");
  EXPECT_FALSE(terminate_child(sup, "a"));
  auto again = restart_child(sup, "a");
  ASSERT_FALSE(again.ec);
  ASSERT_TRUE(std::any_cast<std::string>(&again.value.info));
  // Without info, the answer's info is empty.
  auto plain = start_child(sup, kids.spec("b"));
  EXPECT_FALSE(plain.value.info.has_value());
  stop(sup);
}

TEST_F(StartAnswer, AnAnswerStillReadsAsTheDevice) {
  // Code written when the answer was the device alone still compiles and works.
  auto sup = start(spec());
  auto got = std::make_shared<device_id>();
  asio::co_spawn(
      ctx,
      [&sup, got, this]() -> asio::awaitable<void> {
        device_id d = co_await sup.async_start_child(kids.spec("a"), asio::use_awaitable);
        *got = d;
      },
      asio::detached);
  idle();
  EXPECT_TRUE(*got);
  EXPECT_EQ(info(sup, "a")->device, std::optional(*got));
  stop(sup);
}

TEST_F(StartAnswer, RunningAnswersWithTheRunningDevice) {
  auto sup = start(spec());
  auto first = start_child(sup, kids.spec("a"));
  auto second = start_child(sup, kids.spec("a"));
  EXPECT_EQ(second.ec, supervisor_errc::running);
  EXPECT_EQ(second.value.device, first.value.device);
  EXPECT_FALSE(second.value.reason);
  stop(sup);
}

}  // namespace
