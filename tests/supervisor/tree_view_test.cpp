// The tree view of the runtime API: which_child, get_childspec, a nested supervisor found by
// path from the root's handle, and the whole tree (a recursive which_children), each level
// answered by its own supervisor.

#include "supervisor/fixture.hpp"

#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>

#include <future>

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;

namespace {

class TreeView : public supervisor_fixture {
 protected:
  std::optional<supervisor> leaf_handle;

  /// root -> mid -> leaf -> w1 (backoff 1s), w2
  ///             -> m1
  ///      -> r1 (temporary)
  supervisor_spec tree() {
    supervisor_spec leaf{.name = "leaf", .max_restarts = 5};
    auto w1 = kids.spec("w1");
    w1.backoff = backoff_policy{.initial = 1s, .max = 1s, .jitter = 0.0};
    leaf.children = {w1, kids.spec("w2")};
    leaf.on_start = [this](supervisor const& h) { leaf_handle = h; };
    supervisor_spec mid{.name = "mid", .max_restarts = 2};
    mid.children = {supervisor_child("leaf", leaf), kids.spec("m1")};
    auto root = spec("root");
    root.children = {supervisor_child("mid", mid), kids.spec("r1", restart_type::temporary)};
    return root;
  }

  reply<tree_node> view(supervisor& s) {
    auto r = std::make_shared<reply<tree_node>>();
    s.async_tree_view(value_handler(r));
    return wait_reply(r);
  }
  reply<std::optional<supervisor>> find(supervisor& s, std::string path) {
    auto r = std::make_shared<reply<std::optional<supervisor>>>();
    s.async_find_supervisor(std::move(path), value_handler(r));
    return wait_reply(r);
  }
  reply<child_info> which_one(supervisor& s, std::string id) {
    auto r = std::make_shared<reply<child_info>>();
    s.async_which_child(std::move(id), value_handler(r));
    return wait_reply(r);
  }
};

std::vector<std::string> paths(tree_node const& n) {
  std::vector<std::string> out;
  for (auto const& c : n.children) out.push_back(c.path);
  return out;
}

TEST_F(TreeView, ListsThreeLevelsWithPathsKindsStatusesAndBudgets) {
  auto root = start(tree());
  auto r = view(root);
  ASSERT_FALSE(r.ec) << r.ec.message();
  tree_node const& t = r.value;
  EXPECT_EQ(t.path, "root");
  EXPECT_EQ(t.info.kind, child_kind::supervisor);
  EXPECT_EQ(t.info.device, root.id());
  EXPECT_TRUE(t.inspected);
  ASSERT_TRUE(t.budget);
  EXPECT_EQ(t.budget->max_restarts, 3u);
  EXPECT_EQ(paths(t), (strings{"root/mid", "root/r1"}));

  tree_node const& mid = t.children[0];
  EXPECT_EQ(mid.info.id, "mid");  // the parent's row, not the nested supervisor's own
  EXPECT_EQ(mid.info.kind, child_kind::supervisor);
  EXPECT_EQ(mid.info.status, child_status::running);
  EXPECT_EQ(mid.info.incarnation, 1u);
  EXPECT_TRUE(mid.inspected);
  ASSERT_TRUE(mid.budget);
  EXPECT_EQ(mid.budget->max_restarts, 2u);
  EXPECT_EQ(paths(mid), (strings{"root/mid/leaf", "root/mid/m1"}));

  tree_node const& leaf = mid.children[0];
  EXPECT_TRUE(leaf.inspected);
  ASSERT_TRUE(leaf.budget);
  EXPECT_EQ(leaf.budget->max_restarts, 5u);
  ASSERT_TRUE(leaf_handle);
  EXPECT_EQ(leaf.info.device, leaf_handle->id());
  EXPECT_EQ(paths(leaf), (strings{"root/mid/leaf/w1", "root/mid/leaf/w2"}));
  for (auto const& w : leaf.children) {
    EXPECT_EQ(w.info.kind, child_kind::worker);
    EXPECT_EQ(w.info.status, child_status::running);
    EXPECT_FALSE(w.inspected);
    EXPECT_FALSE(w.budget);
    EXPECT_TRUE(w.children.empty());
  }
  tree_node const& r1 = t.children[1];
  EXPECT_EQ(r1.info.restart, restart_type::temporary);
  EXPECT_FALSE(r1.inspected);
}

TEST_F(TreeView, ANestedChildWaitingForItsRestartShowsAtItsPlace) {
  auto root = start(tree());
  kids.end("w1", ending::error);  // leaf restarts it after 1s of the manual clock
  idle();
  auto r = view(root);
  ASSERT_FALSE(r.ec);
  auto const& leaf = r.value.children[0].children[0];
  EXPECT_EQ(leaf.children[0].info.status, child_status::restarting);
  EXPECT_FALSE(leaf.children[0].info.device);
  EXPECT_EQ(leaf.children[1].info.status, child_status::running);
  EXPECT_EQ(leaf.budget->restarts_in_window, 1u);
  EXPECT_EQ(r.value.children[0].budget->restarts_in_window, 0u);  // mid's is untouched

  clock->advance(1s);
  idle();
  r = view(root);
  ASSERT_FALSE(r.ec);
  auto const& w1 = r.value.children[0].children[0].children[0];
  EXPECT_EQ(w1.info.status, child_status::running);
  EXPECT_EQ(w1.info.incarnation, 2u);
}

TEST_F(TreeView, ANestedSupervisorThatIsStoppedIsListedButNotInspected) {
  auto root = start(tree());
  auto mid = find(root, "root/mid");
  ASSERT_FALSE(mid.ec);
  ASSERT_FALSE(terminate_child(*mid.value, "leaf"));
  auto r = view(root);
  ASSERT_FALSE(r.ec);
  auto const& leaf = r.value.children[0].children[0];
  EXPECT_EQ(leaf.info.status, child_status::stopped);
  EXPECT_FALSE(leaf.inspected);
  EXPECT_TRUE(leaf.children.empty());
}

TEST_F(TreeView, AnEndedSupervisorSaysSo) {
  auto root = start(tree());
  stop(root);
  EXPECT_EQ(view(root).ec, supervisor_errc::supervisor_down);
  EXPECT_EQ(find(root, "root/mid").ec, supervisor_errc::supervisor_down);
  EXPECT_EQ(which_one(root, "mid").ec, supervisor_errc::supervisor_down);
}

TEST_F(TreeView, FindsNestedSupervisorsByPath) {
  auto root = start(tree());
  auto self = find(root, "root");
  ASSERT_FALSE(self.ec);
  EXPECT_EQ(self.value->id(), root.id());

  auto leaf = find(root, "root/mid/leaf");
  ASSERT_FALSE(leaf.ec) << leaf.ec.message();
  ASSERT_TRUE(leaf.value);
  EXPECT_EQ(leaf.value->path(), "root/mid/leaf");
  ASSERT_TRUE(leaf_handle);
  EXPECT_EQ(leaf.value->id(), leaf_handle->id());
  EXPECT_EQ(ids(*leaf.value), (strings{"w1", "w2"}));

  for (auto const* bad : {"root/mid/leaf/w1", "root/r1", "root/nope", "root/mid/nope/x",
                          "other/mid", "rootmid", "root/", ""}) {
    auto r = find(root, bad);
    EXPECT_EQ(r.ec, supervisor_errc::not_found) << bad;
    EXPECT_FALSE(r.value) << bad;
  }
  auto mid = find(root, "root/mid");
  ASSERT_FALSE(mid.ec);
  ASSERT_FALSE(terminate_child(*mid.value, "leaf"));
  EXPECT_EQ(find(root, "root/mid/leaf").ec, supervisor_errc::supervisor_down);
}

TEST_F(TreeView, WhichChildAndGetChildspecAnswerForOneChild) {
  auto root = start(tree());
  auto mid = which_one(root, "mid");
  ASSERT_FALSE(mid.ec);
  EXPECT_EQ(mid.value.kind, child_kind::supervisor);
  EXPECT_EQ(mid.value.status, child_status::running);
  EXPECT_TRUE(mid.value.device);
  EXPECT_EQ(which_one(root, "nope").ec, supervisor_errc::not_found);

  auto leaf = find(root, "root/mid/leaf").value;
  ASSERT_TRUE(leaf);
  auto got = std::make_shared<reply<child_spec>>();
  leaf->async_get_childspec("w1", value_handler(got));
  wait_reply(got);
  ASSERT_FALSE(got->ec);
  EXPECT_EQ(got->value.id, "w1");
  ASSERT_TRUE(got->value.backoff);
  EXPECT_EQ(got->value.backoff->initial, 1s);
  ASSERT_TRUE(got->value.start);
  // The copy starts the child as the supervisor would: a second w1 under another id.
  got->value.id = "w1-copy";
  ASSERT_FALSE(start_child(*leaf, got->value).ec);
  EXPECT_EQ(kids.log.back(), "start w1");

  // A temporary child that has started has no start function left.
  auto r1 = std::make_shared<reply<child_spec>>();
  root.async_get_childspec("r1", value_handler(r1));
  wait_reply(r1);
  ASSERT_FALSE(r1->ec);
  EXPECT_EQ(r1->value.restart, restart_type::temporary);
  EXPECT_FALSE(r1->value.start);

  auto none = std::make_shared<reply<child_spec>>();
  root.async_get_childspec("nope", value_handler(none));
  EXPECT_EQ(wait_reply(none).ec, supervisor_errc::not_found);
}

/// One incarnation of a worker the test crashes from its own thread.
struct crash_switch {
  explicit crash_switch(asio::any_io_executor ex)
      : timer(std::move(ex), asio::steady_timer::time_point::max()) {}
  asio::steady_timer timer;
  bool crash = false;  // on the child's strand
};

asio::awaitable<boost::system::result<void, int>> until_crashed(std::shared_ptr<crash_switch> s) {
  (void)co_await s->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  if (s->crash) co_return boost::system::result<void, int>(7);
  co_return boost::system::result<void, int>();  // cancelled: stopped
}

asio::awaitable<void> crashable(device& d, std::shared_ptr<crash_switch> s) {
  (void)co_await manage(std::move(d), until_crashed(std::move(s)));
}

asio::awaitable<void> parked(device& d) { (void)co_await manage(std::move(d), forever_result()); }

TEST(TreeViewThreads, AnswersWhileANestedChildCrashesOnFourThreads) {
  // Three levels on a 4-thread context, every child on its own strand; the test thread crashes
  // the leaf's worker and asks for the tree after each crash, through futures, until the tree
  // shows the restart. Each answer lists the whole tree; at the end the worker runs at its last
  // incarnation and the leaf's budget counts every restart.
  asio::io_context ctx(4);
  auto work = asio::make_work_guard(ctx);
  std::mutex mu;
  std::shared_ptr<crash_switch> current;  // the worker's current incarnation
  auto w = worker("w", [&](child_context& c) -> asio::awaitable<void> {
    auto s = std::make_shared<crash_switch>(c.executor);
    {
      std::lock_guard lock(mu);
      current = s;
    }
    return crashable(c.device, s);
  });
  supervisor_spec leaf{.name = "leaf", .max_restarts = 1000, .period = std::chrono::hours(1)};
  leaf.children = {w};
  supervisor_spec mid{.name = "mid"};
  mid.children = {supervisor_child("leaf", leaf), worker("m", parked)};
  supervisor_spec s;
  s.name = "root";
  s.logger =
      std::make_shared<spdlog::logger>("tree", std::make_shared<spdlog::sinks::null_sink_mt>());
  s.child_strands = true;
  s.children = {supervisor_child("mid", mid)};
  auto root = supervisor::start(asio::make_strand(ctx), std::move(s));
  ASSERT_TRUE(root);
  std::vector<std::future<void>> threads;
  for (int i = 0; i < 4; ++i)
    threads.push_back(std::async(std::launch::async, [&ctx] { ctx.run(); }));

  auto ask = [&] { return root->async_tree_view(asio::use_future).get(); };
  constexpr std::uint64_t crashes = 20;
  for (std::uint64_t i = 0; i < crashes; ++i) {
    std::shared_ptr<crash_switch> sw;
    {
      std::lock_guard lock(mu);
      sw = current;
    }
    asio::post(sw->timer.get_executor(), [sw] {
      sw->crash = true;
      sw->timer.cancel();
    });
    for (;;) {
      auto const t = ask();
      ASSERT_EQ(t.children.size(), 1u);
      ASSERT_EQ(paths(t.children[0]), (strings{"root/mid/leaf", "root/mid/m"}));
      auto const& l = t.children[0].children[0];
      ASSERT_TRUE(l.inspected);  // mid and leaf never stop
      ASSERT_EQ(paths(l), (strings{"root/mid/leaf/w"}));
      auto const& row = l.children[0].info;
      if (row.incarnation == i + 2 && row.status == child_status::running) break;
    }
  }
  auto const last = ask();
  auto const& l = last.children[0].children[0];
  EXPECT_EQ(l.children.at(0).info.incarnation, crashes + 1);
  EXPECT_EQ(l.budget->restarts_in_window, crashes);
  EXPECT_EQ(last.children[0].children[1].info.incarnation, 1u);
  root->async_stop(asio::use_future).get();
  work.reset();
  for (auto& t : threads) t.get();
}

}  // namespace
