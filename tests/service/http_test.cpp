// The HTTP endpoints hit by a real Beast client on 127.0.0.1 and an ephemeral port. The
// service runs on a thread of its own; the test waits for the tree's events (never for time)
// and moves the manual clock by hand.

#include "children.hpp"

#include <backplane/service/run_service.hpp>

#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <condition_variable>
#include <csignal>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

namespace {

using namespace backplane;
using namespace backplane::test;
namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;

/// A child that fails at its first incarnation and serves from the second on.
child_spec fails_once(std::string id) {
  auto spec = worker(id, [](child_context& c) -> asio::awaitable<work_result> {
    if (c.incarnation == 1) return crash_soon();
    return serve("web", nullptr);
  });
  spec.backoff = backoff_policy{.initial = std::chrono::seconds(1), .jitter = 0};
  return spec;
}

using job_result = boost::system::result<int, boost::system::error_code>;

/// A pool job that says it started, then waits until the test cancels its timer.
asio::awaitable<job_result> held_job(std::shared_ptr<asio::steady_timer> t,
                                     std::shared_ptr<std::promise<void>> started) {
  started->set_value();
  (void)co_await t->async_wait(asio::as_tuple(asio::use_awaitable));
  co_return 1;
}
asio::awaitable<job_result> failing_job() {
  co_return make_error_code(boost::system::errc::io_error);
}
asio::awaitable<job_result> throwing_job() {
  throw std::runtime_error("job boom");
  co_return 0;
}

/// A pool job's answer, waited for from the test thread.
struct job_answer {
  std::promise<bool> crashed_or_refused;  // true when the answer is an exception
  auto handler() {
    return [this](std::exception_ptr e, job_result) { crashed_or_refused.set_value(e != nullptr); };
  }
};

/// `/metrics` parsed: "name{labels}" -> value; every other line must be a HELP or TYPE comment.
std::map<std::string, double> parse_metrics(std::string const& body) {
  std::regex const sample(R"re(([a-z_]+)\{((?:[a-z_]+="(?:[^"\\]|\\.)*",?)*)\} ([0-9.e+-]+))re");
  std::regex const comment(R"re(# (HELP|TYPE) [a-z_]+ .+)re");
  std::map<std::string, double> values;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, sample)) {
      values[m[1].str() + "{" + m[2].str() + "}"] = std::stod(m[3].str());
    } else {
      EXPECT_TRUE(std::regex_match(line, comment)) << "not Prometheus text: " << line;
    }
  }
  return values;
}

class Http : public ::testing::Test {
 protected:
  asio::io_context ctx;
  std::shared_ptr<manual_clock> clock = std::make_shared<manual_clock>();
  std::vector<std::thread> runners;
  std::size_t threads = 1;               // threads running ctx
  std::shared_ptr<pool_registry> pools;  // http_options::pools
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<supervisor_event> events;
  std::optional<tcp::endpoint> endpoint;
  std::optional<service_exit> status;

  /// app: db (a nested supervisor with conn), web (fails once, restarts after 1 s of the
  /// manual clock), cache.
  supervisor_spec tree() {
    auto s = root_spec(clock);
    supervisor_spec db;
    db.name = "db";
    db.children = {server("conn")};
    s.children = {supervisor_child("db", db), fails_once("web"), server("cache")};
    s.observer = [this](supervisor_event const& e) {
      std::lock_guard lock(mutex);
      events.push_back(e);
      changed.notify_all();
    };
    return s;
  }

  /// app: db (a nested supervisor) -> shard (nested in db) -> s1 (fails once, restarts after 1 s
  /// of the manual clock), s2; app's own child cache. The nested supervisors inherit the clock
  /// and the observer.
  supervisor_spec three_levels() {
    auto s = tree();
    supervisor_spec shard;
    shard.name = "shard";
    shard.max_restarts = 7;
    shard.children = {fails_once("s1"), server("s2")};
    supervisor_spec db;
    db.name = "db";
    db.children = {supervisor_child("shard", shard), server("conn")};
    s.children = {supervisor_child("db", db), server("cache")};
    s.on_start = [this](supervisor const& h) {
      std::lock_guard lock(mutex);
      root = h;
    };
    return s;
  }

  std::optional<supervisor> root;  // set by the root spec's on_start (three_levels)

  /// The handle of the supervisor at `path`, found from the root's handle.
  supervisor find(std::string const& path) {
    std::optional<supervisor> r;
    {
      std::lock_guard lock(mutex);
      r = root;
    }
    auto found = r->async_find_supervisor(path, asio::use_future).get();
    if (!found) throw std::runtime_error("no supervisor at " + path);
    return *found;
  }

  void start(supervisor_spec s,
             std::chrono::nanoseconds request_deadline = std::chrono::seconds(30)) {
    service_options o;
    o.systemd = false;
    o.logger = muted_logger();
    o.http = http_options{};
    o.http->port = 0;
    o.http->request_deadline = request_deadline;
    o.http->max_request_bytes = 4096;
    o.http->pools = pools;
    o.http->on_listen = [this](tcp::endpoint ep) {
      std::lock_guard lock(mutex);
      endpoint = ep;
      changed.notify_all();
    };
    async_run_service(ctx, std::move(s), o, [this](service_exit e) {
      std::lock_guard lock(mutex);
      status = e;
      changed.notify_all();
    });
    for (std::size_t i = 0; i < threads; ++i) runners.emplace_back([this] { ctx.run(); });
    std::unique_lock lock(mutex);
    changed.wait(lock, [this] { return endpoint.has_value() || status.has_value(); });
    ASSERT_TRUE(endpoint) << "the service ended before listening";
  }

  /// Waits until an event of `kind` about `child` (or from the supervisor at path `child`) has
  /// been observed.
  void wait_for(supervisor_event_kind kind, std::string const& child) {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] {
      for (auto const& e : events) {
        if (e.event == kind && (e.child == child || e.supervisor == child)) return true;
      }
      return false;
    });
  }

  /// Lets `web` crash, then restarts it by moving the clock past its backoff.
  void crash_and_restart_web() {
    wait_for(supervisor_event_kind::child_terminated, "web");
    // The crash is reported before the restart's timer is scheduled: a round trip through the
    // root (which answers once it has handled the crash) makes sure the timer is there.
    expect_alive();
    clock->advance(std::chrono::seconds(1));
    wait_for(supervisor_event_kind::restarted, "web");
  }

  void TearDown() override {
    if (runners.empty()) return;
    std::unique_lock lock(mutex);
    // Raised only while the service's handler is installed: without it SIGTERM would end the
    // test process.
    EXPECT_FALSE(status) << "the service ended early: " << to_string(*status);
    if (!status) {
      lock.unlock();
      std::raise(SIGTERM);
      lock.lock();
      changed.wait(lock, [this] { return status.has_value(); });
      EXPECT_EQ(*status, service_exit::clean);
    }
    lock.unlock();
    ctx.stop();
    for (auto& r : runners) r.join();
  }

  http::response<http::string_body> get(std::string const& target,
                                        http::verb verb = http::verb::get) {
    asio::io_context io;
    tcp::socket socket(io);
    socket.connect(*endpoint);
    http::request<http::empty_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(socket, req);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(socket, buffer, res);
    return res;
  }

  /// Sends `raw` and reads until the server closes the connection.
  std::string exchange(std::string const& raw) {
    asio::io_context io;
    tcp::socket socket(io);
    socket.connect(*endpoint);
    asio::write(socket, asio::buffer(raw));
    std::string out;
    boost::system::error_code ec;
    asio::read(socket, asio::dynamic_buffer(out), ec);
    EXPECT_EQ(ec, asio::error::eof);
    return out;
  }

  void expect_alive() {
    auto res = get("/livez");
    EXPECT_EQ(res.result(), http::status::ok);
  }
};

TEST_F(Http, LivezAnswersWhileTheRootDoes) {
  start(tree());
  auto res = get("/livez");
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(res.body(), "ok\n");
}

TEST_F(Http, ReadyzIs503WhileAChildWaitsForItsRestartThen200) {
  start(tree());
  wait_for(supervisor_event_kind::child_terminated, "web");
  auto res = get("/readyz");
  EXPECT_EQ(res.result(), http::status::service_unavailable);
  EXPECT_NE(
      res.body().find("app: child web waits for a restart (exception: std::runtime_error: boom)"),
      std::string::npos)
      << res.body();
  clock->advance(std::chrono::seconds(1));
  wait_for(supervisor_event_kind::restarted, "web");
  res = get("/readyz");
  EXPECT_EQ(res.result(), http::status::ok) << res.body();
  EXPECT_EQ(res.body(), "ready\n");
}

TEST_F(Http, TreeIsJsonWithPathsStatusIncarnationAndBudget) {
  start(tree());
  crash_and_restart_web();
  auto res = get("/tree");
  ASSERT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(res[http::field::content_type], "application/json");
  auto const tree = boost::json::parse(res.body()).as_object();
  EXPECT_EQ(tree.at("path").as_string(), "app");
  EXPECT_TRUE(tree.at("answered").as_bool());
  auto const& budget = tree.at("budget").as_object();
  EXPECT_EQ(budget.at("restarts_in_window").to_number<int>(), 1);
  EXPECT_EQ(budget.at("max_restarts").to_number<int>(), 3);
  EXPECT_EQ(budget.at("period_ms").to_number<int>(), 5000);
  auto const& children = tree.at("children").as_array();
  ASSERT_EQ(children.size(), 3U);
  auto const& db = children[0].as_object();
  EXPECT_EQ(db.at("path").as_string(), "app/db");
  EXPECT_EQ(db.at("kind").as_string(), "supervisor");
  EXPECT_EQ(db.at("status").as_string(), "running");
  auto const& web = children[1].as_object();
  EXPECT_EQ(web.at("id").as_string(), "web");
  EXPECT_EQ(web.at("status").as_string(), "running");
  EXPECT_EQ(web.at("restart").as_string(), "permanent");
  EXPECT_EQ(web.at("incarnation").to_number<int>(), 2);
  EXPECT_EQ(web.at("restarts").to_number<int>(), 1);
  EXPECT_EQ(web.at("crashes").to_number<int>(), 1);
  EXPECT_NE(web.at("last_reason").as_string().find("boom"), boost::json::string::npos);
  EXPECT_TRUE(web.at("device").is_string());
}

/// The JSON node at `path` below `node` (the /tree document or a node of it), or nullptr.
boost::json::object const* node_at(boost::json::object const& node, std::string_view path) {
  for (auto const& c : node.at("children").as_array()) {
    auto const& o = c.as_object();
    auto const p = o.at("path").as_string();
    if (p == path) return &o;
    if (path.substr(0, p.size() + 1) == std::string(p) + "/") return node_at(o, path);
  }
  return nullptr;
}

TEST_F(Http, TreeShowsEveryLevelFromEachSupervisorsOwnAnswer) {
  threads = 4;
  start(three_levels());
  wait_for(supervisor_event_kind::child_terminated, "s1");
  auto res = get("/tree");
  ASSERT_EQ(res.result(), http::status::ok);
  auto const tree = boost::json::parse(res.body()).as_object();
  EXPECT_TRUE(tree.at("answered").as_bool());
  auto const* db = node_at(tree, "app/db");
  ASSERT_TRUE(db) << res.body();
  EXPECT_EQ(db->at("kind").as_string(), "supervisor");
  EXPECT_TRUE(db->at("inspected").as_bool());
  EXPECT_EQ(db->at("budget").at("max_restarts").to_number<int>(), 3);
  auto const* shard = node_at(tree, "app/db/shard");
  ASSERT_TRUE(shard) << res.body();
  EXPECT_EQ(shard->at("budget").at("max_restarts").to_number<int>(), 7);
  EXPECT_EQ(shard->at("budget").at("restarts_in_window").to_number<int>(), 1);
  // Every child, whether or not an event named it (s2 and conn never had one).
  auto const* s1 = node_at(tree, "app/db/shard/s1");
  auto const* s2 = node_at(tree, "app/db/shard/s2");
  auto const* conn = node_at(tree, "app/db/conn");
  ASSERT_TRUE(s1 && s2 && conn) << res.body();
  EXPECT_EQ(s1->at("status").as_string(), "restarting");
  EXPECT_TRUE(s1->at("restart_pending").as_bool());
  EXPECT_EQ(s1->at("crashes").to_number<int>(), 1);
  EXPECT_TRUE(s1->at("device").is_null());
  EXPECT_EQ(s2->at("status").as_string(), "running");
  EXPECT_EQ(s2->at("incarnation").to_number<int>(), 1);
  EXPECT_TRUE(s2->at("device").is_string());
  EXPECT_EQ(conn->at("kind").as_string(), "worker");

  clock->advance(std::chrono::seconds(1));
  wait_for(supervisor_event_kind::restarted, "s1");
  auto const after = boost::json::parse(get("/tree").body()).as_object();
  s1 = node_at(after, "app/db/shard/s1");
  ASSERT_TRUE(s1);
  EXPECT_EQ(s1->at("status").as_string(), "running");
  EXPECT_EQ(s1->at("incarnation").to_number<int>(), 2);
  EXPECT_EQ(s1->at("restarts").to_number<int>(), 1);
}

TEST_F(Http, ReadyzFollowsANestedChildsCrashAndRestart) {
  threads = 4;
  start(three_levels());
  wait_for(supervisor_event_kind::child_terminated, "s1");
  auto res = get("/readyz");
  EXPECT_EQ(res.result(), http::status::service_unavailable);
  EXPECT_NE(res.body().find("app/db/shard: child s1 waits for a restart"), std::string::npos)
      << res.body();
  clock->advance(std::chrono::seconds(1));
  wait_for(supervisor_event_kind::restarted, "s1");
  res = get("/readyz");
  EXPECT_EQ(res.result(), http::status::ok) << res.body();
}

TEST_F(Http, ReadyzSeesANestedPermanentChildStoppedWithoutAnyEvent) {
  // terminate_child reports nothing: only the nested supervisor's own answer tells /readyz.
  threads = 4;
  start(three_levels());
  wait_for(supervisor_event_kind::child_terminated, "s1");
  // A round trip through shard's strand (the tree view): s1's restart timer is scheduled.
  ASSERT_EQ(get("/readyz").result(), http::status::service_unavailable);
  clock->advance(std::chrono::seconds(1));
  wait_for(supervisor_event_kind::restarted, "s1");
  ASSERT_EQ(get("/readyz").result(), http::status::ok);
  auto shard = find("app/db/shard");
  shard.async_terminate_child("s2", asio::use_future).get();
  auto res = get("/readyz");
  EXPECT_EQ(res.result(), http::status::service_unavailable);
  EXPECT_EQ(res.body(), "not ready:\n- app/db/shard: permanent child s2 is stopped\n");
  (void)shard.async_restart_child("s2", asio::use_future).get();
  res = get("/readyz");
  EXPECT_EQ(res.result(), http::status::ok) << res.body();
}

TEST_F(Http, MetricsAreValidPrometheusText) {
  start(tree());
  crash_and_restart_web();
  auto res = get("/metrics");
  ASSERT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(res[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  // Every line is a comment (# HELP / # TYPE) or a sample: name{label="value",...} number.
  auto const values = parse_metrics(res.body());
  // No pool registered: no pool metrics.
  for (auto const& [key, v] : values) EXPECT_EQ(key.rfind("backplane_pool_", 0), std::string::npos);
  EXPECT_EQ(values.at(R"(backplane_child_restarts_total{supervisor="app",child="web"})"), 1);
  EXPECT_EQ(values.at(R"(backplane_child_crashes_total{supervisor="app",child="web"})"), 1);
  EXPECT_EQ(values.at(R"(backplane_children{supervisor="app",status="running"})"), 3);
  EXPECT_EQ(values.at(R"(backplane_children{supervisor="app",status="restarting"})"), 0);
  EXPECT_EQ(values.at(R"(backplane_intensity_exceeded_total{supervisor="app"})"), 0);
  EXPECT_EQ(values.at(R"(backplane_up{supervisor="app"})"), 1);
  // The nested supervisor answers for itself.
  EXPECT_EQ(values.at(R"(backplane_children{supervisor="app/db",status="running"})"), 1);
  EXPECT_EQ(values.at(R"(backplane_max_restarts{supervisor="app/db"})"), 3);
  EXPECT_EQ(values.at(R"(backplane_restarts_in_window{supervisor="app"})"), 1);
}

TEST_F(Http, MetricsShowTheRegisteredPoolsStats) {
  // app/pool: one worker, room for one queued job. A held job runs, a second waits, a third is
  // refused; then the held one completes, the second fails, a fourth crashes its worker.
  auto registry = std::make_shared<pool_registry>();
  std::optional<worker_pool> pool;
  worker_pool_spec ps;
  ps.name = "pool";
  ps.workers = 1;
  ps.queue_capacity = 1;
  auto s = tree();
  s.children.push_back(worker_pool::as_child(
      "pool", ps, pool_registry::on_start(registry, [this, &pool](worker_pool p) {
        std::lock_guard lock(mutex);
        pool = std::move(p);
      })));
  pools = registry;
  start(std::move(s));
  worker_pool handle = [this, &pool] {
    std::lock_guard lock(mutex);
    return *pool;
  }();
  EXPECT_EQ(handle.path(), "app/pool");

  auto held = std::make_shared<asio::steady_timer>(ctx, asio::steady_timer::time_point::max());
  auto started = std::make_shared<std::promise<void>>();
  job_answer a, b, c, d;
  handle.async_submit(held_job(held, started), a.handler());
  started->get_future().wait();
  handle.async_submit(failing_job(), b.handler());
  handle.try_submit(failing_job(), c.handler());
  EXPECT_TRUE(c.crashed_or_refused.get_future().get());  // queue_full

  auto v = parse_metrics(get("/metrics").body());
  EXPECT_EQ(v.at(R"(backplane_pool_jobs_running{pool="app/pool"})"), 1);
  EXPECT_EQ(v.at(R"(backplane_pool_jobs_queued{pool="app/pool"})"), 1);
  EXPECT_EQ(v.at(R"(backplane_pool_jobs_rejected_total{pool="app/pool"})"), 1);
  EXPECT_EQ(v.at(R"(backplane_pool_jobs_submitted_total{pool="app/pool"})"), 2);
  EXPECT_EQ(v.at(R"(backplane_pool_workers_alive{pool="app/pool"})"), 1);

  asio::post(ctx, [held] { held->cancel(); });
  EXPECT_FALSE(a.crashed_or_refused.get_future().get());
  EXPECT_FALSE(b.crashed_or_refused.get_future().get());
  handle.async_submit(throwing_job(), d.handler());
  EXPECT_TRUE(d.crashed_or_refused.get_future().get());  // job_crashed
  wait_for(supervisor_event_kind::restarted, "app/pool");

  v = parse_metrics(get("/metrics").body());
  EXPECT_EQ(v.at(R"(backplane_pool_jobs_submitted_total{pool="app/pool"})"), 3);
  EXPECT_EQ(v.at(R"(backplane_pool_jobs_completed_total{pool="app/pool"})"), 1);
  EXPECT_EQ(v.at(R"(backplane_pool_jobs_failed_total{pool="app/pool"})"), 1);
  EXPECT_EQ(v.at(R"(backplane_pool_jobs_crashed_total{pool="app/pool"})"), 1);
  EXPECT_EQ(v.at(R"(backplane_pool_jobs_cancelled_total{pool="app/pool"})"), 0);
  EXPECT_EQ(v.at(R"(backplane_pool_jobs_rejected_total{pool="app/pool"})"), 1);
  EXPECT_EQ(v.at(R"(backplane_pool_jobs_retried_total{pool="app/pool"})"), 0);
  EXPECT_EQ(v.at(R"(backplane_pool_jobs_running{pool="app/pool"})"), 0);
  EXPECT_EQ(v.at(R"(backplane_pool_jobs_queued{pool="app/pool"})"), 0);
  EXPECT_EQ(v.at(R"(backplane_pool_workers_alive{pool="app/pool"})"), 1);
  EXPECT_EQ(v.at(R"(backplane_pool_worker_restarts_total{pool="app/pool"})"), 1);
  EXPECT_EQ(v.at(R"(backplane_pool_queue_high_water{pool="app/pool"})"), 1);
}

TEST_F(Http, EventsStreamTheReports) {
  start(tree());
  wait_for(supervisor_event_kind::child_terminated, "web");
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect(*endpoint);
  asio::write(socket, asio::buffer(std::string("GET /events HTTP/1.1\r\nHost: x\r\n\r\n")));
  std::string got;
  // The kept report (web's crash) comes first; the restart follows once the clock moves.
  asio::read_until(socket, asio::dynamic_buffer(got), "\n\n");
  EXPECT_NE(got.find("Content-Type: text/event-stream"), std::string::npos) << got;
  if (got.find("child_terminated") == std::string::npos) {
    asio::read_until(socket, asio::dynamic_buffer(got), "child_terminated");
  }
  expect_alive();  // the restart's timer is scheduled (see crash_and_restart_web)
  clock->advance(std::chrono::seconds(1));
  asio::read_until(socket, asio::dynamic_buffer(got), "\"event\":\"restarted\"");
  EXPECT_NE(got.find("event: report\ndata: {"), std::string::npos) << got;
}

TEST_F(Http, PageIsOneSelfContainedDocument) {
  start(tree());
  auto res = get("/");
  ASSERT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(res[http::field::content_type], "text/html; charset=utf-8");
  EXPECT_NE(res.body().find("<table id=\"tree\">"), std::string::npos);
  // No external assets: nothing is loaded from elsewhere.
  EXPECT_EQ(res.body().find("src="), std::string::npos);
  EXPECT_EQ(res.body().find("href="), std::string::npos);
}

TEST_F(Http, UnknownPathsAndMethods) {
  start(tree());
  EXPECT_EQ(get("/nope").result(), http::status::not_found);
  auto res = get("/tree", http::verb::post);
  EXPECT_EQ(res.result(), http::status::method_not_allowed);
  EXPECT_EQ(res[http::field::allow], "GET, HEAD");
}

TEST_F(Http, MalformedRequestIs400AndTheTreeGoesOn) {
  start(tree());
  auto out = exchange("NOT HTTP AT ALL\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0U) << out;
  expect_alive();
}

TEST_F(Http, HugeRequestIs400AndTheTreeGoesOn) {
  start(tree());
  std::string raw =
      "GET /livez HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(8192, 'a') + "\r\n\r\n";
  auto out = exchange(raw);
  EXPECT_EQ(out.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0U) << out;
  // A body where none is expected is too big as well.
  out = exchange("GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(out.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0U) << out;
  expect_alive();
}

TEST_F(Http, SlowRequestIsClosedAfterTheDeadline) {
  // A real deadline, short: the connection is closed unanswered (a bounded wait).
  start(tree(), std::chrono::milliseconds(100));
  auto out = exchange("GET /livez HTTP/1.1\r\nHost: x\r\n");
  EXPECT_EQ(out, "");
  expect_alive();
}

TEST_F(Http, AnAddressInUseFailsTheStart) {
  asio::io_context io;
  tcp::acceptor taken(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  service_options o;
  o.systemd = false;
  o.logger = muted_logger();
  o.http = http_options{};
  o.http->port = taken.local_endpoint().port();
  std::optional<service_exit> ended;
  auto s = root_spec(clock);
  s.children = {server("a")};
  async_run_service(ctx, std::move(s), o, [&](service_exit e) { ended = e; });
  run_until_idle(ctx);
  ASSERT_TRUE(ended);
  EXPECT_EQ(*ended, service_exit::failed_start);
}

}  // namespace
