// Runs a one-child tree as a service through the installed package: proves that
// backplane::service links (with libsystemd, when the package was built with it). The root's
// tree view is read once it has started; the child sends the process SIGTERM once it runs, so
// the service stops gracefully: exit status 0.

#include <backplane/service/pool_registry.hpp>
#include <backplane/service/run_service.hpp>
#include <backplane/supervisor.hpp>

#include <fmt/core.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <csignal>

namespace asio = boost::asio;

namespace {

asio::awaitable<boost::system::result<void, int>> stop_me() {
  std::raise(SIGTERM);
  asio::steady_timer t(co_await asio::this_coro::executor, asio::steady_timer::time_point::max());
  (void)co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return boost::system::result<void, int>();
}

}  // namespace

int main() {
  backplane::supervisor_spec spec;
  spec.name = "consumer";
  spec.children = {backplane::worker("stopper", [](backplane::device&) { return stop_me(); })};
  spec.on_start = [](backplane::supervisor const& started) {
    auto root = started;
    root.async_tree_view([](boost::system::error_code ec, backplane::tree_node const& tree) {
      if (!ec) fmt::print("consumer: tree {} with {} child\n", tree.path, tree.children.size());
    });
  };
  backplane::service_options options;
  options.http = backplane::http_options{};
  options.http->port = 0;  // an ephemeral port on 127.0.0.1
  options.http->pools = std::make_shared<backplane::pool_registry>();
  auto status = backplane::run_service(std::move(spec), options);
  fmt::print("consumer: service ended: {}\n", backplane::to_string(status));
  return backplane::to_int(status);
}
