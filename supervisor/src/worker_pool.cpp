// The worker pool's handle: validation, start, nesting, and the compiled ends
// of the header's shims.

#include "worker_pool_impl.hpp"

#include <boost/core/demangle.hpp>

#include <fmt/format.h>

#include <cxxabi.h>

#include <stdexcept>

namespace backplane {

void validate(worker_pool_spec const& spec) {
  if (spec.workers == 0)
    throw std::invalid_argument(fmt::format(
        "backplane: worker pool '{}' has workers = 0, so no job could ever run; give it at "
        "least one worker (with max_workers for a pool that grows under load)",
        spec.name));
  if (spec.queue_capacity == 0)
    throw std::invalid_argument(fmt::format(
        "backplane: worker pool '{}' has queue_capacity = 0; give the queue room for at least "
        "one job (submitters wait when it is full)",
        spec.name));
  if (spec.max_workers && *spec.max_workers < spec.workers)
    throw std::invalid_argument(fmt::format(
        "backplane: worker pool '{}' has max_workers = {} below workers = {}; max_workers is "
        "the most the pool grows to, so make it at least `workers` (or leave it unset for a "
        "fixed size)",
        spec.name, *spec.max_workers, spec.workers));
  if (spec.retry.max_attempts == 0)
    throw std::invalid_argument(fmt::format(
        "backplane: worker pool '{}' has retry.max_attempts = 0; every job runs at least once, "
        "so use 1 for no retries",
        spec.name));
  if (spec.idle_timeout < std::chrono::nanoseconds::zero())
    throw std::invalid_argument(fmt::format(
        "backplane: worker pool '{}' has a negative idle_timeout; use a positive duration",
        spec.name));
  dynamic_supervisor_spec d;
  d.name = spec.name;
  d.max_restarts = spec.max_restarts;
  d.period = spec.period;
  d.backoff = spec.backoff;
  validate(d);
}

worker_pool worker_pool::start(executor_type ex, worker_pool_spec spec) {
  validate(spec);
  std::string path = spec.name;
  auto impl = std::make_shared<detail::worker_pool_impl>(std::move(ex), std::move(spec));
  (void)impl->start(std::move(path), nullptr, nullptr);
  return worker_pool(std::move(impl));
}

child_spec worker_pool::as_child(std::string id, worker_pool_spec spec,
                                 std::function<void(worker_pool)> on_start) {
  validate(spec);
  child_spec c;
  c.id = std::move(id);
  c.kind = child_kind::supervisor;
  c.shutdown = shutdown_policy::infinity();
  auto shared = std::make_shared<worker_pool_spec const>(std::move(spec));
  c.start = [shared, on_start = std::move(on_start)](child_context& ctx) -> start_result {
    auto impl = std::make_shared<detail::worker_pool_impl>(ctx.executor, *shared);
    auto life = impl->start(ctx.supervisor + "/" + ctx.id,
                            static_cast<supervisor_spec const*>(ctx.parent_options), &ctx);
    if (on_start) on_start(worker_pool(impl));
    return std::move(*life);
  };
  return c;
}

namespace detail {

void pool_job::caught(std::exception const* e) {
  thrown = std::current_exception();
  // As backplane::describe words it, without rethrowing the exception.
  std::type_info const* t = abi::__cxa_current_exception_type();
  thrown_text = t ? boost::core::demangle(t->name()) : std::string("unknown exception");
  if (e) {
    thrown_text += ": ";
    thrown_text += e->what();
  }
}

}  // namespace detail

worker_pool::executor_type const& worker_pool::executor_of(impl_ptr const& impl) {
  return impl->executor();
}

device_id worker_pool::id() const { return impl_->supervisor()->id(); }
line worker_pool::line() const { return impl_->supervisor()->line(); }
std::string const& worker_pool::path() const { return impl_->supervisor()->path(); }
pool_stats worker_pool::stats() const { return impl_->stats(); }

void worker_pool::submit(impl_ptr const& impl, detail::pool_job_ptr job, detail::submit_mode mode) {
  impl->submit(std::move(job), mode);
}

void worker_pool::stop(
    impl_ptr const& impl, std::chrono::nanoseconds deadline, bool request,
    boost::asio::any_completion_handler<void(boost::system::error_code, pool_stats)> h) {
  impl->stop(deadline, request, std::move(h));
}

}  // namespace backplane
