// A supervisor as the child of another (supervisor_child's start function).

#include "supervisor_impl.hpp"

#include "nested_hook.hpp"

#include <boost/asio/co_spawn.hpp>

#include <fmt/format.h>

#include <exception>

namespace asio = boost::asio;

namespace backplane::detail {

namespace {
/// A nested supervisor's life as its parent sees it: the run, then the
/// device's disconnect with the way it ended.
asio::awaitable<void> nested_life(std::shared_ptr<supervisor_impl> impl, device* home) {
  std::exception_ptr failed;
  try {
    co_await impl->run(impl);
  } catch (...) {
    failed = std::current_exception();
  }
  if (failed) {
    impl->crashed(failed);           // hands the device back
    std::rethrow_exception(failed);  // run_finished: fault::error, with this cause
  }
  supervisor_exit const e = impl->exit();
  // run_finished disconnects with fault::error and the parent reports this.
  if (e.intensity_exceeded) throw restart_intensity_exceeded(impl->give_up_text());
  if (e.fault && home->valid()) home->disconnect(*e.fault);
}
}  // namespace

start_result start_nested(supervisor_spec const& spec, child_context& ctx) {
  auto const* parent = static_cast<supervisor_spec const*>(ctx.parent_options);
  auto impl =
      std::make_shared<supervisor_impl>(ctx.executor, spec, ctx.supervisor + "/" + ctx.id, parent);
  // Before its children link to it.
  impl->adopt_device(std::move(ctx.device), nullptr);
  auto failure = impl->start_declared();
  if (failure) {
    // It runs on to stop what it started, then disconnects the device, which
    // the parent has unlinked by then.
    asio::co_spawn(impl->executor(), impl->run(impl), [impl](std::exception_ptr e) {
      if (e) impl->crashed(e);
    });
    return start_error{fmt::format("failed_to_start_child {}: {}", failure->id, failure->reason)};
  }
  impl->set_home(&ctx.device);
  // Runs on the nested supervisor's executor (the child's).
  if (ctx.on_kill) *ctx.on_kill = nested_hook{impl};
  impl->started();
  return nested_life(std::move(impl), &ctx.device);
}

}  // namespace backplane::detail
