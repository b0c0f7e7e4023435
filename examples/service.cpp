// The supervision tree demo as a service: the same tree as supervision_tree.cpp (a flaky `web`
// whose first two incarnations throw), run until SIGTERM or SIGINT with backplane::service:
// systemd notifications when NOTIFY_SOCKET is set, HTTP endpoints on 127.0.0.1:8080 (or the
// port given as the first argument; 0 picks one and prints it), and the exit status of
// service_exit. `kill -USR1 <pid>` makes `web` crash once more, to watch a restart live.
//
//   ./tree_service 8080 & curl -s localhost:8080/tree; kill -TERM %1; wait; echo $?

#include <backplane/backplane.hpp>
#include <backplane/service/run_service.hpp>
#include <backplane/supervisor.hpp>

#include <fmt/format.h>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace backplane;

namespace {

using outcome = boost::system::result<void, std::string>;

asio::awaitable<outcome> serve(device&) {
  asio::steady_timer t(co_await asio::this_coro::executor, asio::steady_timer::time_point::max());
  co_await t.async_wait(asio::use_awaitable);
  co_return outcome();
}

/// Fails twice a moment after starting, then serves until SIGUSR1 tells it to fail again.
asio::awaitable<outcome> flaky_web(child_context& c) {
  auto ex = co_await asio::this_coro::executor;
  if (c.incarnation <= 2) {
    asio::steady_timer t(ex, 20ms);
    co_await t.async_wait(asio::use_awaitable);
    throw std::runtime_error(
        fmt::format("upstream refused connection (attempt {})", c.incarnation));
  }
  asio::signal_set crash(ex, SIGUSR1);
  co_await crash.async_wait(asio::use_awaitable);
  throw std::runtime_error("crash requested (SIGUSR1)");
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

}  // namespace

int main(int argc, char** argv) {
  service_options options{.stop_deadline = 10s, .http = http_options{}};
  options.http->port = static_cast<std::uint16_t>(argc > 1 ? std::stoi(argv[1]) : 8080);
  options.http->on_listen = [](asio::ip::tcp::endpoint ep) {
    fmt::print("listening on http://{}:{}/\n", ep.address().to_string(), ep.port());
    std::fflush(stdout);
  };
  return to_int(run_service(tree(), options));
}
