// Supervision trees: supervisors as children of supervisors, declared with
// supervisor_child. Start order, leaves-first shutdown, escalation of a give-up
// level by level, and restarts of a nested supervisor from its declaration.

#include "supervisor/fixture.hpp"

#include <spdlog/sinks/ostream_sink.h>

#include <sstream>

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;

namespace {

class Nested : public supervisor_fixture {
 protected:
  std::optional<supervisor> mid_handle;
  std::optional<supervisor> leaf_handle;

  /// root (one_for_one) -> mid (one_for_one) -> leaf (one_for_one) -> w1, w2
  ///                                         -> m1
  ///                    -> r1
  supervisor_spec tree(std::uint32_t root_max = 3, std::uint32_t mid_max = 3,
                       std::uint32_t leaf_max = 3) {
    // The nested specs set nothing but their own flags: clock, logger,
    // observer and child_strands come from the root.
    supervisor_spec leaf{.name = "leaf", .max_restarts = leaf_max};
    leaf.children = {kids.spec("w1"), kids.spec("w2")};
    leaf.on_start = [this](supervisor const& h) { leaf_handle = h; };
    supervisor_spec mid{.name = "mid", .max_restarts = mid_max};
    mid.children = {supervisor_child("leaf", leaf), kids.spec("m1")};
    mid.on_start = [this](supervisor const& h) { mid_handle = h; };
    auto root = spec("root");
    root.max_restarts = root_max;
    root.children = {supervisor_child("mid", mid), kids.spec("r1")};
    return root;
  }
};

TEST_F(Nested, ThreeLevelsStartInOrderAndStopLeavesFirst) {
  auto root = start(tree());
  EXPECT_EQ(kids.log, (strings{"start w1", "start w2", "start m1", "start r1"}));
  ASSERT_TRUE(mid_handle);
  ASSERT_TRUE(leaf_handle);
  EXPECT_EQ(root.path(), "root");
  EXPECT_EQ(mid_handle->path(), "root/mid");
  EXPECT_EQ(leaf_handle->path(), "root/mid/leaf");

  auto top = which(root);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].id, "mid");
  EXPECT_EQ(top[0].kind, child_kind::supervisor);
  EXPECT_EQ(top[0].device, mid_handle->id());
  EXPECT_EQ(top[1].kind, child_kind::worker);
  auto n = counts(root).value;
  EXPECT_EQ(n.supervisors, 1u);
  EXPECT_EQ(n.workers, 1u);
  EXPECT_EQ(n.active, 2u);
  EXPECT_EQ(ids(*mid_handle), (strings{"leaf", "m1"}));
  EXPECT_EQ(ids(*leaf_handle), (strings{"w1", "w2"}));

  kids.clear_log();
  auto exit = stop(root);
  EXPECT_FALSE(exit.fault);
  // Each supervisor stops its children, last first, before it goes itself.
  EXPECT_EQ(kids.log, (strings{"stop r1", "stop m1", "stop w2", "stop w1"}));
  EXPECT_TRUE(ended(*mid_handle));
  EXPECT_TRUE(ended(*leaf_handle));
  EXPECT_FALSE(ended(*leaf_handle)->fault);
  EXPECT_TRUE(events.empty());  // clean all the way
}

TEST_F(Nested, DeepFailureBeyondIntensityEscalatesLevelByLevel) {
  auto root = start(tree(/*root*/ 0, /*mid*/ 1, /*leaf*/ 1));
  // leaf: one restart allowed, the second crash makes it give up.
  kids.end("w1", ending::error);
  idle();
  EXPECT_EQ(kids.starts["w1"], 2);
  kids.end("w1", ending::error);
  idle();
  // leaf gave up; mid restarted it once (its one allowed restart), afresh.
  EXPECT_EQ(kids.starts["w1"], 3);
  EXPECT_EQ(kids.starts["w2"], 2);
  EXPECT_FALSE(ended(root));
  auto mid_term = of_child("leaf");
  ASSERT_FALSE(mid_term.empty());
  EXPECT_EQ(mid_term[0].supervisor, "root/mid");
  EXPECT_EQ(mid_term[0].event, supervisor_event_kind::child_terminated);
  EXPECT_EQ(why(mid_term[0]),
            "exception: backplane::restart_intensity_exceeded: supervisor root/mid/leaf gave up: "
            "2 restarts > 1 in 5s");
  EXPECT_EQ(decision(mid_term[0]), "restart");

  // Again: leaf gives up, mid is over its limit and gives up, root (limit 0) too.
  kids.end("w1", ending::error);
  idle();
  kids.end("w1", ending::error);
  idle();
  auto exit = ended(root);
  ASSERT_TRUE(exit);
  EXPECT_TRUE(exit->intensity_exceeded);
  EXPECT_EQ(exit->fault, fault::error());

  strings gave_up;
  for (auto const& e : of_kind(supervisor_event_kind::intensity_exceeded))
    gave_up.push_back(e.supervisor);
  EXPECT_EQ(gave_up, (strings{"root/mid/leaf", "root/mid/leaf", "root/mid", "root"}));
  for (auto const& id : {"w1", "w2", "m1", "r1"}) EXPECT_FALSE(kids.running(id)) << id;
}

TEST_F(Nested, RestartedNestedSupervisorStartsFromItsDeclaredChildren) {
  auto root = start(tree(3, /*mid*/ 0));
  ASSERT_TRUE(mid_handle);
  supervisor first_mid = *mid_handle;
  ASSERT_FALSE(start_child(first_mid, kids.spec("extra")).ec);
  EXPECT_EQ(ids(first_mid), (strings{"leaf", "m1", "extra"}));
  kids.clear_log();

  kids.end("m1", ending::error);  // mid (limit 0) gives up; root restarts it
  idle();
  EXPECT_EQ(kids.log, (strings{"crash m1", "stop extra", "stop w2", "stop w1", "start w1",
                               "start w2", "start m1"}));
  ASSERT_TRUE(mid_handle);
  EXPECT_NE(mid_handle->id(), first_mid.id());
  EXPECT_EQ(ids(*mid_handle), (strings{"leaf", "m1"}));  // extra is gone
  EXPECT_EQ(kids.starts["extra"], 1);
  EXPECT_EQ(which_ec(first_mid).ec, supervisor_errc::supervisor_down);
  auto mid_row = info(root, "mid");
  EXPECT_EQ(mid_row->incarnation, 2u);
  EXPECT_EQ(mid_row->device, mid_handle->id());
  stop(root);
}

TEST_F(Nested, TerminateAndRestartANestedSupervisor) {
  auto root = start(tree());
  kids.clear_log();
  ASSERT_FALSE(terminate_child(root, "mid"));
  EXPECT_EQ(kids.log, (strings{"stop m1", "stop w2", "stop w1"}));
  EXPECT_EQ(info(root, "mid")->status, child_status::stopped);
  auto r = restart_child(root, "mid");
  ASSERT_FALSE(r.ec);
  EXPECT_EQ(r.value, mid_handle->id());
  EXPECT_EQ(kids.log.size(), 6u);
  EXPECT_TRUE(kids.running("w1"));
  stop(root);
}

TEST_F(Nested, NestedStartFailureFailsTheParentsStart) {
  supervisor_spec leaf{.name = "leaf"};
  leaf.children = {kids.spec("ok"), worker("bad", [](device&) -> start_result {
                     throw std::runtime_error("no disk");
                   })};
  supervisor_spec mid{.name = "mid"};
  mid.children = {supervisor_child("leaf", leaf), kids.spec("m1")};
  auto root = spec("root");
  root.children = {kids.spec("r0"), supervisor_child("mid", mid), kids.spec("r1")};
  auto r = supervisor::start(ctx.get_executor(), std::move(root));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().id, "mid");
  EXPECT_EQ(r.error().reason,
            "failed_to_start_child leaf: failed_to_start_child bad: exception: "
            "std::runtime_error: no disk");
  idle();
  EXPECT_EQ(kids.log, (strings{"start r0", "start ok", "stop ok", "stop r0"}));
  strings errs;
  for (auto const& e : of_kind(supervisor_event_kind::start_error))
    errs.push_back(e.supervisor + " " + e.child);
  EXPECT_EQ(errs, (strings{"root/mid/leaf bad", "root/mid leaf", "root mid"}));
}

TEST_F(Nested, NestedSupervisorsInheritTheRootsOptions) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  auto json_logger = std::make_shared<spdlog::logger>("json", sink);
  json_logger->set_formatter(make_report_formatter());
  auto s = tree();
  s.logger = json_logger;
  s.format = report_format::json;
  auto root = start(std::move(s));
  kids.end("w2", ending::exception);
  idle();
  ASSERT_EQ(of_kind(supervisor_event_kind::child_terminated).size(), 1u);
  EXPECT_EQ(of_kind(supervisor_event_kind::child_terminated)[0].supervisor, "root/mid/leaf");
  std::string const text = out.str();
  EXPECT_EQ(text.rfind("{\"ts\":", 0), 0u) << text;
  EXPECT_NE(text.find("\"supervisor\":\"root/mid/leaf\",\"child\":\"w2\""), std::string::npos)
      << text;
  EXPECT_NE(text.find("\"kind\":\"exception\",\"exception_type\":\"std::runtime_error\","
                      "\"message\":\"boom\""),
            std::string::npos)
      << text;
  stop(root);
}

TEST_F(Nested, KillingANestedSupervisorKillsItsChildren) {
  // Past its timeout a nested supervisor is killed like any child: it then
  // cancels its own children at once, without waiting their policies out,
  // and ends with a fault.
  supervisor_spec leaf{.name = "leaf"};
  auto slow = worker("slow", [&](device&) -> asio::awaitable<void> {
    kids.log.push_back("start slow");
    try {
      co_await forever();  // ignores shutdown requests, not cancellation
    } catch (...) {
      kids.log.push_back("cancelled slow");
      throw;
    }
  });
  slow.shutdown = shutdown_policy::infinity();
  leaf.children = {kids.spec("w1"), slow};
  auto s = spec("root");
  auto child = supervisor_child("leaf", leaf);
  child.shutdown = shutdown_policy::timeout(1s);
  s.children = {child};
  auto root = start(std::move(s));
  kids.clear_log();
  bool stopped = false;
  root.async_stop([&](auto, supervisor_exit e) {
    EXPECT_FALSE(e.fault);
    stopped = true;
  });
  idle();
  EXPECT_TRUE(kids.log.empty());
  clock->advance(1s);
  idle();
  EXPECT_TRUE(stopped);
  EXPECT_EQ(kids.log, (strings{"cancelled slow", "kill w1"}));
  auto errs = of_kind(supervisor_event_kind::shutdown_error);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].supervisor, "root");
  EXPECT_EQ(errs[0].child, "leaf");
  EXPECT_EQ(decision(errs[0]), "cancel");
}

TEST_F(Nested, ParentTimeoutAppliesToANestedSupervisorsWholeTree) {
  // A nested supervisor given a finite timeout whose own child will not stop:
  // the parent cancels it after the timeout and, if need be, abandons it.
  supervisor_spec leaf{.name = "leaf"};
  auto deaf = worker("deaf", [](device&) -> asio::awaitable<void> {
    try {
      co_await forever();
    } catch (...) {
    }
    co_await asio::this_coro::reset_cancellation_state();
    co_await forever();
  });
  deaf.shutdown = shutdown_policy::infinity();
  leaf.children = {deaf};
  auto s = spec("root");
  auto child = supervisor_child("leaf", leaf);
  child.shutdown = shutdown_policy::timeout(1s);
  s.children = {child};
  auto root = start(std::move(s));
  bool stopped = false;
  root.async_stop([&](auto, auto) { stopped = true; });
  idle();
  clock->advance(1s);
  idle();
  clock->advance(1s);
  idle();
  EXPECT_TRUE(stopped);
  auto errs = of_kind(supervisor_event_kind::shutdown_error);
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_EQ(errs[0].supervisor, "root");
  EXPECT_EQ(decision(errs[0]), "cancel");
  EXPECT_EQ(decision(errs[1]), "abandon");
}

}  // namespace
