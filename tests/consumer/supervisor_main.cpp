// Starts and stops a supervisor through the installed package: proves that
// backplane::supervisor links, with spdlog found by backplane's package config.
// Exit code 0 when the supervisor stopped cleanly.

#include <backplane/supervisor.hpp>

#include <fmt/core.h>
#include <boost/asio/io_context.hpp>

#include <optional>
#include <utility>

int main() {
  boost::asio::io_context ctx;
  backplane::supervisor_spec spec;
  spec.name = "consumer";
  auto sup = backplane::supervisor::start(ctx.get_executor(), std::move(spec));
  if (!sup) {
    fmt::print("consumer: the supervisor did not start\n");
    return 1;
  }
  std::optional<backplane::supervisor_exit> exit;
  sup->async_stop([&](boost::system::error_code ec, backplane::supervisor_exit e) {
    if (!ec) exit = e;
  });
  ctx.run();
  if (!exit || exit->fault || exit->intensity_exceeded) {
    fmt::print("consumer: the supervisor did not stop cleanly\n");
    return 1;
  }
  fmt::print("consumer: supervisor '{}' started and stopped cleanly\n", sup->path());
  return 0;
}
