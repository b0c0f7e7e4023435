#pragma once
// run_service: run a supervision tree as a process's whole life, the way systemd and Kubernetes
// expect a service to behave.

#include <backplane/service/pool_registry.hpp>
#include <backplane/service/service_exit.hpp>
#include <backplane/supervisor/supervisor_spec.hpp>

#include <spdlog/fwd.h>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace backplane {

/// The HTTP endpoints (`/livez`, `/readyz`, `/tree`, `/metrics`, `/events`, `/`), served on the
/// service's io_context. Off unless `service_options::http` is set.
struct http_options {
  std::string address = "127.0.0.1";  ///< an IPv4 or IPv6 literal; "0.0.0.0" for every interface
  std::uint16_t port = 8080;          ///< 0: an ephemeral port (see `on_listen`)
  /// A request must arrive whole within this time, or its connection is closed.
  std::chrono::nanoseconds request_deadline = std::chrono::seconds(10);
  /// A request bigger than this (headers and body) is answered 400 and its connection closed.
  std::size_t max_request_bytes = 16 * 1024;
  /// `/livez` fails (503) when the root supervisor does not answer within this time.
  std::chrono::nanoseconds livez_deadline = std::chrono::seconds(1);
  /// The worker pools whose stats `/metrics` shows (`backplane_pool_*`); none when empty.
  std::shared_ptr<pool_registry> pools{};
  /// Called once listening, with the bound endpoint (how a test learns an ephemeral port).
  std::function<void(boost::asio::ip::tcp::endpoint)> on_listen{};
};

/// How `run_service` runs the tree.
struct service_options {
  /// Threads running the io_context (`run_service` only). More than one: every supervisor and
  /// child runs on its own strand (the spec's `child_strands`, default true, must stay on).
  std::size_t threads = 1;
  /// After the first SIGTERM/SIGINT, the time the graceful stop may take in all; then the
  /// process exits with `service_exit::deadline_exceeded`, whatever still runs. Measured on the
  /// root spec's clock (a manual clock in tests).
  std::chrono::nanoseconds stop_deadline = std::chrono::seconds(30);
  /// Talk to systemd (READY=1, STOPPING=1, STATUS=, WATCHDOG=1) when `NOTIFY_SOCKET` is set.
  /// Without libsystemd at build time there is nothing to talk with: the service says so once.
  bool systemd = true;
  /// Serve the HTTP endpoints; off when empty.
  std::optional<http_options> http{};
  /// Where the service's own lines go (started, stopping, ended with status); default: the
  /// root spec's logger, or the spdlog logger "backplane".
  std::shared_ptr<spdlog::logger> logger{};
};

/// Runs `root` on a new io_context with `options.threads` threads until the tree ends, and
/// returns the process exit status (see service_exit for the table). Blocks; installs handlers
/// for SIGTERM and SIGINT while it runs (through asio::signal_set). The first signal stops the
/// tree gracefully (children in reverse start order, each under its shutdown policy; systemd
/// hears STOPPING=1); a second one, or `stop_deadline` passing, ends it at once.
///
/// `main` is one line: `return to_int(backplane::run_service(tree(), {...}));`.
///
/// Never throws: an invalid spec is `bad_spec` (the reason is logged), an exception out of the
/// event loop `internal_error`.
[[nodiscard]] service_exit run_service(supervisor_spec root, service_options options = {});

namespace detail {
void async_run_service_impl(boost::asio::io_context& ctx, supervisor_spec root,
                            service_options options,
                            boost::asio::any_completion_handler<void(service_exit)> handler);
}  // namespace detail

/// `run_service` on a context the caller runs (a test drives it by hand; a program that has
/// other work on its context). Starts the tree from `ctx` (posted), completes with the exit
/// status when the tree has ended, or at once on a second signal or the stop deadline: the
/// tree may then still run, and stopping the context (or not) is the caller's choice;
/// `run_service` stops it.
///
/// @par Completion Signature `void(service_exit)`
/// @par Per-Operation Cancellation Not supported: stop the service with a signal.
/// Thread-safety: call it once per context, from any thread.
template <class Token>
auto async_run_service(boost::asio::io_context& ctx, supervisor_spec root, service_options options,
                       Token&& token) {
  return boost::asio::async_initiate<Token, void(service_exit)>(
      [&ctx](auto handler, supervisor_spec r, service_options o) {
        detail::async_run_service_impl(ctx, std::move(r), std::move(o), std::move(handler));
      },
      token, std::move(root), std::move(options));
}

}  // namespace backplane
