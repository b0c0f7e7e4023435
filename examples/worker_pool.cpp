// A worker pool serving jobs, some of which crash their worker: each crash is
// one JSON report line (with the job's identity), each crashed job's submitter
// is answered with job_crashed, and the final stats show that nothing was
// lost: submitted = completed + failed + crashed + cancelled + queued + running.
//
//   pool "orders" (3 workers, queue of 8, 5 restarts in 1 s)
//   24 jobs: "price order N"; order 7 and order 19 hold a bad row (the job
//   throws: a crash), order 12 is unknown (the job returns an error: its
//   worker stays); orders for the same customer (the key) run in order on
//   one worker.

#include <backplane/backplane.hpp>
#include <backplane/supervisor.hpp>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <stdexcept>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace backplane;

namespace {

using price = boost::system::result<int, boost::system::error_code>;

/// One job: price an order, after a hop through the queue as real work would.
asio::awaitable<price> price_order(int order) {
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  if (order == 7 || order == 19)
    throw std::runtime_error(fmt::format("order {}: bad row in line items", order));
  if (order == 12) co_return make_error_code(boost::system::errc::no_such_file_or_directory);
  co_return order * 10;
}

}  // namespace

int main() {
  asio::io_context ctx;
  auto logger = std::make_shared<spdlog::logger>("backplane",
                                                 std::make_shared<spdlog::sinks::stdout_sink_mt>());
  logger->set_pattern("%v");  // one JSON object per line, nothing else
  logger->set_level(spdlog::level::err);

  worker_pool_spec spec;
  spec.name = "orders";
  spec.workers = 3;
  spec.queue_capacity = 8;
  spec.max_restarts = 5;
  spec.period = 1s;
  spec.logger = logger;
  spec.format = report_format::json;
  spec.child_strands = false;  // one thread
  auto pool = worker_pool::start(ctx.get_executor(), spec);

  int answered = 0;
  for (int order = 1; order <= 24; ++order) {
    std::string const customer = fmt::format("customer-{}", order % 4);
    pool.async_submit(job_key(customer), price_order(order),
                      [&answered, order](std::exception_ptr e, price p) {
                        ++answered;
                        if (e) {
                          std::printf("order %2d: %s\n", order, describe(e).c_str());
                        } else if (!p) {
                          std::printf("order %2d: error: %s\n", order, p.error().message().c_str());
                        }
                      });
  }
  // Until every order is answered (run() would not return: the pool runs on).
  while (answered < 24) ctx.run_one();

  pool.async_stop(1s, [](boost::system::error_code, pool_stats s) {
    std::printf(
        "stats: submitted=%llu completed=%llu failed=%llu crashed=%llu cancelled=%llu "
        "queued=%llu running=%llu restarts=%llu workers_alive=%zu queue_high_water=%zu\n",
        static_cast<unsigned long long>(s.submitted), static_cast<unsigned long long>(s.completed),
        static_cast<unsigned long long>(s.failed), static_cast<unsigned long long>(s.crashed),
        static_cast<unsigned long long>(s.cancelled), static_cast<unsigned long long>(s.queued),
        static_cast<unsigned long long>(s.running), static_cast<unsigned long long>(s.restarts),
        s.workers_alive, s.queue_high_water);
    bool const identity =
        s.submitted == s.completed + s.failed + s.crashed + s.cancelled + s.queued + s.running;
    std::printf(
        "identity: submitted %s completed + failed + crashed + cancelled + queued + running\n",
        identity ? "==" : "!=");
  });
  ctx.run();
  return answered == 24 ? 0 : 1;
}
