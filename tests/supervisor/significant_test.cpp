// Significant children and auto_shutdown (OTP 24's EEP 56), restated from
// supervisor_SUITE's significant_* cases: a significant child that ends by
// itself and is not restarted (temporary: any exit; transient: a clean exit)
// ends its supervisor cleanly, at once (any_significant) or with the last one
// (all_significant); exits the supervisor caused never count; only transient
// and temporary children may be significant, and only with auto_shutdown set.

#include "supervisor/fixture.hpp"

#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>

#include <thread>

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;

namespace {

class Significant : public supervisor_fixture {
 protected:
  child_spec significant(std::string id, restart_type r) {
    child_spec c = kids.spec(std::move(id), r);
    c.significant = true;
    return c;
  }
  supervisor_spec with(auto_shutdown a, std::vector<child_spec> children,
                       std::string name = "sup") {
    auto s = spec(std::move(name));
    s.auto_shutdown = a;
    s.children = std::move(children);
    return s;
  }
  /// The events whose action is auto_shutdown.
  std::vector<supervisor_event> decisions() const {
    std::vector<supervisor_event> out;
    for (auto const& e : events)
      if (e.action == supervisor_action::auto_shutdown) out.push_back(e);
    return out;
  }
};

TEST_F(Significant, TemporaryCleanExitShutsTheSupervisorDown) {
  // significant_temporary, normal exit.
  auto sup =
      start(with(auto_shutdown::any_significant,
                 {kids.spec("a"), significant("t", restart_type::temporary), kids.spec("b")}));
  kids.clear_log();
  kids.end("t", ending::clean);
  idle();
  EXPECT_EQ(kids.log, (strings{"end t", "stop b", "stop a"}));
  auto exit = ended(sup);
  ASSERT_TRUE(exit) << "the supervisor did not shut down";
  EXPECT_TRUE(exit->auto_shutdown);
  EXPECT_FALSE(exit->fault) << "an auto shutdown is clean";
  EXPECT_FALSE(exit->intensity_exceeded);
  auto d = decisions();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].child, "t");
  EXPECT_EQ(d[0].event, supervisor_event_kind::child_terminated);
  EXPECT_EQ(d[0].reason.kind, reason_kind::clean);
  EXPECT_EQ(d[0].note, "any_significant");
}

TEST_F(Significant, TemporaryCrashShutsItDownToo) {
  // significant_temporary, abnormal exit: a temporary child is never restarted.
  auto sup = start(with(auto_shutdown::any_significant,
                        {significant("t", restart_type::temporary), kids.spec("b")}));
  kids.end("t", ending::exception);
  idle();
  auto exit = ended(sup);
  ASSERT_TRUE(exit);
  EXPECT_TRUE(exit->auto_shutdown);
  EXPECT_FALSE(exit->fault);
  EXPECT_EQ(budget(sup).ec, supervisor_errc::supervisor_down);
}

TEST_F(Significant, TransientCrashRestartsCleanExitShutsDown) {
  // significant_transient: an abnormal exit is restarted as usual.
  auto sup = start(with(auto_shutdown::any_significant,
                        {significant("t", restart_type::transient), kids.spec("b")}));
  kids.end("t", ending::exception);
  idle();
  EXPECT_FALSE(ended(sup));
  EXPECT_EQ(kids.starts["t"], 2);
  EXPECT_TRUE(decisions().empty());
  kids.end("t", ending::clean);
  idle();
  auto exit = ended(sup);
  ASSERT_TRUE(exit);
  EXPECT_TRUE(exit->auto_shutdown);
}

TEST_F(Significant, BystanderExitsDoNothing) {
  // significant_bystander: a child that is not significant ends its way.
  auto sup =
      start(with(auto_shutdown::any_significant,
                 {kids.spec("n", restart_type::transient), kids.spec("m", restart_type::temporary),
                  significant("s", restart_type::transient)}));
  kids.end("n", ending::clean);
  kids.end("m", ending::exception);
  idle();
  EXPECT_FALSE(ended(sup));
  EXPECT_TRUE(kids.running("s"));
  stop(sup);
}

TEST_F(Significant, AllSignificantWaitsForTheLastOne) {
  auto sup = start(with(auto_shutdown::all_significant,
                        {significant("x", restart_type::transient),
                         significant("y", restart_type::temporary), kids.spec("z")}));
  kids.end("x", ending::clean);
  idle();
  EXPECT_FALSE(ended(sup)) << "y is still running";
  EXPECT_TRUE(decisions().empty());
  kids.end("y", ending::clean);
  idle();
  auto exit = ended(sup);
  ASSERT_TRUE(exit);
  EXPECT_TRUE(exit->auto_shutdown);
  auto d = decisions();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].child, "y");
  EXPECT_EQ(d[0].note, "all_significant");
}

TEST_F(Significant, AllSignificantCountsAChildWaitingToRestartAsAlive) {
  // OTP counts a significant child alive unless its pid is undefined: a
  // child waiting for its restart (pid {restarting, _}) keeps the supervisor up.
  auto x = significant("x", restart_type::transient);
  x.backoff = backoff_policy{.initial = 1s, .max = 1s, .jitter = 0};
  auto sup =
      start(with(auto_shutdown::all_significant, {x, significant("y", restart_type::temporary)}));
  kids.end("x", ending::exception);
  idle();
  EXPECT_EQ(info(sup, "x")->status, child_status::restarting);
  kids.end("y", ending::clean);
  idle();
  EXPECT_FALSE(ended(sup)) << "x waits to restart: it is still alive";
  clock->advance(1s);
  idle();
  ASSERT_TRUE(kids.running("x"));
  kids.end("x", ending::clean);
  idle();
  auto exit = ended(sup);
  ASSERT_TRUE(exit);
  EXPECT_TRUE(exit->auto_shutdown);
}

TEST_F(Significant, AllSignificantIgnoresChildrenThatNeverRan) {
  // An ignored significant child has no pid in OTP: it does not hold the
  // supervisor up.
  child_spec x = significant("x", restart_type::transient);
  x.start = [](child_context&) -> start_result { return start_result::ignore(); };
  auto sup =
      start(with(auto_shutdown::all_significant, {x, significant("y", restart_type::transient)}));
  kids.end("y", ending::clean);
  idle();
  auto exit = ended(sup);
  ASSERT_TRUE(exit);
  EXPECT_TRUE(exit->auto_shutdown);
}

TEST_F(Significant, TerminateChildDoesNotTrigger) {
  // OTP: "the manual termination of a child by means of
  // supervisor:terminate_child/2 will not trigger an automatic shutdown".
  auto sup = start(with(auto_shutdown::any_significant,
                        {significant("t", restart_type::transient),
                         significant("u", restart_type::temporary), kids.spec("b")}));
  EXPECT_FALSE(terminate_child(sup, "t"));
  EXPECT_FALSE(terminate_child(sup, "u"));
  idle();
  EXPECT_FALSE(ended(sup));
  EXPECT_TRUE(decisions().empty());
  // A significant child started again still counts when it ends by itself.
  EXPECT_FALSE(restart_child(sup, "t").ec);
  kids.end("t", ending::clean);
  idle();
  ASSERT_TRUE(ended(sup));
}

TEST_F(Significant, SiblingsStoppedByAGroupRestartDoNotTrigger) {
  // OTP: the termination of a child as a consequence of a sibling's death
  // (one_for_all, rest_for_one) does not trigger an automatic shutdown.
  for (auto strategy : {restart_strategy::one_for_all, restart_strategy::rest_for_one}) {
    SCOPED_TRACE(static_cast<int>(strategy));
    events.clear();
    auto s = with(auto_shutdown::any_significant,
                  {kids.spec("a"), significant("t", restart_type::transient),
                   significant("u", restart_type::temporary)});
    s.strategy = strategy;
    auto sup = start(std::move(s));
    kids.end("a", ending::exception);
    idle();
    EXPECT_FALSE(ended(sup));
    EXPECT_TRUE(decisions().empty());
    EXPECT_TRUE(kids.running("t"));
    EXPECT_EQ(ids(sup), (strings{"a", "t"})) << "the temporary sibling is dropped";
    stop(sup);
  }
}

TEST_F(Significant, AStoppingSupervisorDoesNotDecideAgain) {
  // Significant children that end while the supervisor stops are reported,
  // and the exit stays a plain stop.
  auto sup =
      start(with(auto_shutdown::any_significant, {significant("t", restart_type::temporary)}));
  auto e = stop(sup);
  EXPECT_FALSE(e.auto_shutdown);
  EXPECT_TRUE(decisions().empty());
}

TEST_F(Significant, EscalatesThroughANestedSupervisor) {
  // significant_escalation: the inner supervisor shuts down cleanly; as a
  // transient significant child of the outer, its clean end shuts the outer
  // down too.
  supervisor_spec inner{.name = "inner"};
  inner.auto_shutdown = auto_shutdown::any_significant;
  inner.children = {significant("t", restart_type::temporary), kids.spec("w")};
  child_spec nested = supervisor_child("inner", inner);
  nested.restart = restart_type::transient;
  nested.significant = true;
  auto sup = start(with(auto_shutdown::any_significant, {kids.spec("o"), nested}, "outer"));
  kids.clear_log();
  kids.end("t", ending::clean);
  idle();
  EXPECT_EQ(kids.log, (strings{"end t", "stop w", "stop o"}));
  auto exit = ended(sup);
  ASSERT_TRUE(exit);
  EXPECT_TRUE(exit->auto_shutdown);
  EXPECT_FALSE(exit->fault);
  auto d = decisions();
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].supervisor, "outer/inner");
  EXPECT_EQ(d[1].supervisor, "outer");
  EXPECT_EQ(d[1].child, "inner");
}

TEST_F(Significant, APermanentParentRestartsANestedSupervisorThatShutDown) {
  // OTP: the child supervisor exits with reason shutdown; a permanent child
  // is restarted whatever its reason.
  supervisor_spec inner{.name = "inner"};
  inner.auto_shutdown = auto_shutdown::any_significant;
  inner.children = {significant("t", restart_type::temporary)};
  auto sup = start(with(auto_shutdown::never, {supervisor_child("inner", inner)}, "outer"));
  kids.end("t", ending::clean);
  idle();
  EXPECT_FALSE(ended(sup));
  EXPECT_EQ(kids.starts["t"], 2);
  EXPECT_EQ(info(sup, "inner")->status, child_status::running);
  stop(sup);
}

TEST_F(Significant, OnlyTransientOrTemporaryMayBeSignificant) {
  auto s = with(auto_shutdown::any_significant, {significant("p", restart_type::permanent)});
  try {
    (void)supervisor::start(ctx.get_executor(), std::move(s));
    ADD_FAILURE() << "a permanent significant child was accepted";
  } catch (std::invalid_argument const& e) {
    EXPECT_NE(std::string(e.what()).find("'p' is significant but permanent"), std::string::npos)
        << e.what();
  }
  child_spec c = kids.spec("p");
  c.significant = true;
  EXPECT_THROW(validate(c), std::invalid_argument);
}

TEST_F(Significant, SignificantChildrenNeedAutoShutdown) {
  // OTP: with auto_shutdown never, significant child specs are rejected.
  auto s = with(auto_shutdown::never, {significant("t", restart_type::temporary)});
  try {
    (void)supervisor::start(ctx.get_executor(), std::move(s));
    ADD_FAILURE() << "a significant child was accepted with auto_shutdown never";
  } catch (std::invalid_argument const& e) {
    EXPECT_NE(std::string(e.what()).find("auto_shutdown"), std::string::npos) << e.what();
  }
  // At runtime too, at the call whatever the token.
  auto sup = start(with(auto_shutdown::never, {kids.spec("a")}));
  EXPECT_THROW(sup.async_start_child(significant("t", restart_type::temporary), [](auto, auto) {}),
               std::invalid_argument);
  EXPECT_THROW(
      (void)sup.async_start_child(significant("p", restart_type::permanent), asio::deferred),
      std::invalid_argument);
  EXPECT_EQ(ids(sup), (strings{"a"}));
  stop(sup);
}

TEST_F(Significant, ADynamicallyStartedSignificantChildCounts) {
  auto sup = start(with(auto_shutdown::any_significant, {kids.spec("a")}));
  auto r = start_child(sup, significant("t", restart_type::temporary));
  ASSERT_FALSE(r.ec);
  kids.end("t", ending::clean);
  idle();
  auto exit = ended(sup);
  ASSERT_TRUE(exit);
  EXPECT_TRUE(exit->auto_shutdown);
}

TEST(SignificantThreads, ShutsDownOnFourThreads) {
  // Children on their own strands, ending by themselves on other threads.
  asio::io_context ctx(4);
  auto work = asio::make_work_guard(ctx);
  supervisor_spec s;
  s.logger =
      std::make_shared<spdlog::logger>("sig", std::make_shared<spdlog::sinks::null_sink_mt>());
  s.auto_shutdown = auto_shutdown::all_significant;
  for (int i = 0; i < 16; ++i) {
    child_spec c = worker(fmt::format("s{}", i), [](device&) -> asio::awaitable<void> {
      // A few hops, then a clean end.
      for (int k = 0; k < 3; ++k) co_await asio::post(asio::use_awaitable);
    });
    c.restart = restart_type::transient;
    c.significant = true;
    s.children.push_back(std::move(c));
  }
  // A managed work: the stop cancels it at once (the clock here is real).
  s.children.push_back(worker("bystander", [](device&) { return forever_result(); }));
  auto sup = supervisor::start(asio::make_strand(ctx), std::move(s));
  ASSERT_TRUE(sup);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&ctx] { ctx.run(); });
  auto exit = sup->async_wait(asio::use_future).get();
  EXPECT_TRUE(exit.auto_shutdown);
  EXPECT_FALSE(exit.fault);
  work.reset();
  for (auto& t : threads) t.join();
}

}  // namespace
