// run_service: the blocking form on its own io_context, and the asynchronous one.

#include "service_runner.hpp"

#include <backplane/service/run_service.hpp>

#include <spdlog/spdlog.h>

#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace backplane {

namespace detail {

void async_run_service_impl(boost::asio::io_context& ctx, supervisor_spec root,
                            service_options options,
                            boost::asio::any_completion_handler<void(service_exit)> handler) {
  std::make_shared<service_runner>(ctx, std::move(root), std::move(options), std::move(handler))
      ->start();
}

}  // namespace detail

service_exit run_service(supervisor_spec root, service_options options) {
  std::size_t const threads = options.threads == 0 ? 1 : options.threads;
  std::optional<service_exit> status;
  std::exception_ptr escaped;
  std::mutex escaped_mutex;
  {
    boost::asio::io_context ctx(static_cast<int>(threads));
    async_run_service(ctx, std::move(root), std::move(options), [&](service_exit s) {
      status = s;
      // The tree has ended, or is abandoned (second signal, deadline): either way the
      // process's life is over, and what still runs on the context is destroyed with it.
      ctx.stop();
    });
    auto run = [&] {
      try {
        ctx.run();
      } catch (...) {
        // The first exception wins; the context stops so that every thread returns.
        std::lock_guard lock(escaped_mutex);
        if (!escaped) escaped = std::current_exception();
        ctx.stop();
      }
    };
    std::vector<std::thread> pool;
    pool.reserve(threads - 1);
    for (std::size_t i = 1; i < threads; ++i) pool.emplace_back(run);
    run();
    for (auto& t : pool) t.join();
  }
  if (escaped) {
    try {
      std::rethrow_exception(escaped);
    } catch (std::exception const& e) {
      spdlog::error("service: an exception escaped the event loop: {}", e.what());
    } catch (...) {
      spdlog::error("service: an exception escaped the event loop");
    }
    return service_exit::internal_error;
  }
  return status.value_or(service_exit::internal_error);
}

}  // namespace backplane
