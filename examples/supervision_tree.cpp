// The supervision tree demo: three levels, a flaky worker, crash reports,
// a clean shutdown.
//
//   app (one_for_one, 5 restarts in 10 s)
//   ├── db (rest_for_one)
//   │   ├── conn           a connection keeper
//   │   └── pool (one_for_all)
//   │       ├── query-1
//   │       └── query-2
//   └── web                flaky: its first incarnation throws, its second
//                          returns an error
//
// The program runs the tree, lets `web` crash twice (each crash is one
// report line on stdout, as an operator would see it), prints the tree as
// which_children sees it, then stops the root: every child stops, leaves
// first, and the program exits 0. With `--json`, the reports are JSON lines,
// as a log pipeline reads them.

#include <backplane/backplane.hpp>
#include <backplane/supervisor.hpp>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <stdexcept>
#include <string_view>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace backplane;

namespace {

using outcome = boost::system::result<void, std::string>;

/// A worker's life, as a managed work (the start function returns it and the
/// supervisor manages it): serve until the supervisor cancels it, on a
/// shutdown request or a crash of anything the device monitors. The device
/// stays with the supervisor, which listens on it.
asio::awaitable<outcome> serve(device&) {
  asio::steady_timer t(co_await asio::this_coro::executor, asio::steady_timer::time_point::max());
  co_await t.async_wait(asio::use_awaitable);
  co_return outcome();
}

/// The flaky worker: its first two incarnations fail a moment after starting,
/// the first by throwing (the report names the exception's type and
/// message), the second by returning an error (the report shows the value).
asio::awaitable<outcome> flaky_web(child_context& c) {
  if (c.incarnation <= 2) {
    asio::steady_timer t(co_await asio::this_coro::executor, 20ms);
    co_await t.async_wait(asio::use_awaitable);
    if (c.incarnation == 1) throw std::runtime_error("upstream refused connection");
    co_return outcome(boost::system::in_place_error, "upstream timed out after 3 tries");
  }
  co_return co_await serve(c.device);
}

supervisor_spec tree() {
  supervisor_spec pool{.name = "pool", .strategy = restart_strategy::one_for_all};
  pool.children = {worker("query-1", serve), worker("query-2", serve)};

  supervisor_spec db{.name = "db", .strategy = restart_strategy::rest_for_one};
  db.children = {worker("conn", serve), supervisor_child("pool", pool)};

  supervisor_spec app{.name = "app", .max_restarts = 5, .period = 10s};
  app.children = {supervisor_child("db", db), worker("web", flaky_web)};
  return app;
}

char const* status_name(child_status s) {
  switch (s) {
    case child_status::running: return "running";
    case child_status::restarting: return "restarting";
    case child_status::stopped: return "stopped";
  }
  return "?";
}

}  // namespace

int main(int argc, char** argv) {
  bool const json = argc > 1 && std::string_view(argv[1]) == "--json";
  asio::io_context ctx;
  // Crash reports go to stdout, one line each, as an operator reads them;
  // JSON reports one object per line and nothing else (the library's
  // formatter writes them as they are).
  auto logger = std::make_shared<spdlog::logger>("backplane",
                                                 std::make_shared<spdlog::sinks::stdout_sink_mt>());
  logger->set_formatter(make_report_formatter("[%l] %v"));
  logger->set_level(spdlog::level::info);

  auto spec = tree();
  spec.logger = logger;
  if (json) spec.format = report_format::json;
  int restarts = 0;
  spec.observer = [&](supervisor_event const& e) {
    if (e.event == supervisor_event_kind::restarted) ++restarts;
  };
  auto sup = supervisor::start(asio::make_strand(ctx), std::move(spec));
  if (!sup) {
    fmt::print("failed to start: child {}: {}\n", sup.error().id, sup.error().reason);
    return 1;
  }
  fmt::print("started supervision tree '{}' ({})\n", sup->path(), sup->id());

  int exit_code = 1;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        // Give `web` time to fail twice and come back.
        asio::steady_timer t(co_await asio::this_coro::executor, 150ms);
        co_await t.async_wait(asio::use_awaitable);
        auto kids = co_await sup->async_which_children(asio::use_awaitable);
        fmt::print("children of {}:\n", sup->path());
        for (auto const& k : kids) {
          fmt::print("  {:<4} {:<10} {:<10} incarnation {}{}\n", k.id,
                     k.kind == child_kind::supervisor ? "supervisor" : "worker",
                     status_name(k.status), k.incarnation,
                     k.device ? fmt::format(" device {}", *k.device) : std::string());
        }
        auto exit = co_await sup->async_stop(asio::use_awaitable);
        fmt::print("stopped: {} after {} restarts\n",
                   exit.fault ? fmt::format("with fault {}", *exit.fault) : std::string("cleanly"),
                   restarts);
        exit_code = (!exit.fault && restarts == 2) ? 0 : 1;
      },
      asio::detached);
  ctx.run();
  return exit_code;
}
