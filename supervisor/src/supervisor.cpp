// The public handle: validation, start, and API calls hopping onto the
// supervisor's executor.

#include "supervisor_impl.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

namespace asio = boost::asio;

namespace backplane {

namespace {
/// Runs an API call's handling on the supervisor's executor. If the
/// supervisor's own bookkeeping throws there (std::bad_alloc), it ends with a
/// fault (supervisor_impl::crashed) instead of the exception leaving
/// io_context::run(); the call's handler, if not yet answered, is destroyed
/// unanswered.
template <class F>
void guarded(std::shared_ptr<detail::supervisor_impl> const& impl, F&& f) {
  try {
    f();
  } catch (...) {
    impl->crashed(std::current_exception());
  }
}
}  // namespace

boost::system::result<supervisor, start_failure> supervisor::start(executor_type ex,
                                                                   supervisor_spec spec) {
  validate(spec);
  std::string path = spec.name;
  auto impl =
      std::make_shared<detail::supervisor_impl>(ex, std::move(spec), std::move(path), nullptr);
  auto failure = impl->start_declared();
  // Either way the supervisor runs: to supervise, or to stop what it started.
  asio::co_spawn(impl->executor(), impl->run(impl), [impl](std::exception_ptr e) {
    if (e) impl->crashed(e);  // its own bookkeeping failed: a fault, never silence
  });
  if (failure) return std::move(*failure);
  impl->started();
  return supervisor(std::move(impl));
}

boost::asio::any_io_executor supervisor::executor_of(impl_ptr const& impl) {
  return impl->executor();
}

device_id supervisor::id() const { return impl_->id(); }
line supervisor::line() const { return impl_->line(); }
std::string const& supervisor::path() const { return impl_->path(); }

void supervisor::validate_for(impl_ptr const& impl, child_spec const& spec) {
  validate(spec);
  detail::validate_significance(spec, impl->path(), impl->auto_shutdown_flag());
}

void supervisor::start_child(impl_ptr const& impl, child_spec spec,
                             handler_t<child_start_result> h) {
  // Validated by async_start_child, at the call.
  asio::post(impl->executor(), [impl, spec = std::move(spec), h = std::move(h)]() mutable {
    guarded(impl, [&] { impl->api_start_child(std::move(spec), std::move(h)); });
  });
}

void supervisor::terminate_child(impl_ptr const& impl, std::string id, void_handler_t h) {
  asio::post(impl->executor(), [impl, id = std::move(id), h = std::move(h)]() mutable {
    guarded(impl, [&] { impl->api_terminate_child(std::move(id), std::move(h)); });
  });
}

void supervisor::restart_child(impl_ptr const& impl, std::string id,
                               handler_t<child_start_result> h) {
  asio::post(impl->executor(), [impl, id = std::move(id), h = std::move(h)]() mutable {
    guarded(impl, [&] { impl->api_restart_child(std::move(id), std::move(h)); });
  });
}

void supervisor::delete_child(impl_ptr const& impl, std::string id, void_handler_t h) {
  asio::post(impl->executor(), [impl, id = std::move(id), h = std::move(h)]() mutable {
    guarded(impl, [&] { impl->api_delete_child(std::move(id), std::move(h)); });
  });
}

void supervisor::which_children(impl_ptr const& impl, handler_t<std::vector<child_info>> h) {
  asio::post(impl->executor(), [impl, h = std::move(h)]() mutable {
    guarded(impl, [&] { impl->api_which_children(std::move(h)); });
  });
}

void supervisor::count_children(impl_ptr const& impl, handler_t<child_counts> h) {
  asio::post(impl->executor(), [impl, h = std::move(h)]() mutable {
    guarded(impl, [&] { impl->api_count_children(std::move(h)); });
  });
}

void supervisor::budget(impl_ptr const& impl, handler_t<restart_budget> h) {
  asio::post(impl->executor(), [impl, h = std::move(h)]() mutable {
    guarded(impl, [&] { impl->api_budget(std::move(h)); });
  });
}

void supervisor::stop(impl_ptr const& impl, bool request, handler_t<supervisor_exit> h) {
  asio::post(impl->executor(), [impl, request, h = std::move(h)]() mutable {
    guarded(impl, [&] { impl->api_stop(request, std::move(h)); });
  });
}

}  // namespace backplane
