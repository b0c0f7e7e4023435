// The dynamic supervisor's handle: validation, start, nesting, and API calls
// hopping onto its executor.

#include "dynamic_supervisor_impl.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include <fmt/format.h>

#include <stdexcept>

namespace asio = boost::asio;

namespace backplane {

namespace {
/// An API call's body, on the supervisor's executor: if it throws (its
/// bookkeeping could not allocate), the supervisor ends with a fault
/// (dynamic_supervisor_impl::crashed) instead of the exception leaving
/// io_context::run(); the call's handler, if not yet answered, is destroyed
/// unanswered.
template <class F>
void guarded(std::shared_ptr<detail::dynamic_supervisor_impl> const& impl, F&& f) {
  try {
    f();
  } catch (...) {
    impl->crashed(std::current_exception());
  }
}
}  // namespace

void validate(dynamic_supervisor_spec const& spec) {
  if (spec.name.empty() || spec.name.find('/') != std::string::npos)
    throw std::invalid_argument(
        "backplane: dynamic_supervisor_spec.name must be non-empty and contain no '/'; it is one "
        "element of the supervisor path");
  if (spec.period < std::chrono::nanoseconds::zero() ||
      (spec.period == std::chrono::nanoseconds::zero() && spec.max_restarts > 0))
    throw std::invalid_argument(fmt::format(
        "backplane: dynamic supervisor '{}' allows {} restarts in a period of {}ns; the restart "
        "period must be positive (max_restarts = 0 means 'never restart', with any period)",
        spec.name, spec.max_restarts, spec.period.count()));
  if (spec.max_children == 0)
    throw std::invalid_argument(fmt::format(
        "backplane: dynamic supervisor '{}' has max_children = 0, so no child could ever start; "
        "leave it unset for no limit, or give the most children it may hold",
        spec.name));
  // OTP's rules for simple_one_for_one (supervisor.erl rejects auto_shutdown
  // for that strategy since OTP 27, and significant children without it).
  if (spec.auto_shutdown != auto_shutdown::never)
    throw std::invalid_argument(fmt::format(
        "backplane: dynamic supervisor '{}' has auto_shutdown = {}; a dynamic supervisor "
        "(OTP's simple_one_for_one, which rejects it too) does not end by its children's exits, "
        "since children started on demand come and go by design. Leave it `never`; to end a "
        "tree when its work is done, make the dynamic supervisor a significant transient child "
        "of a supervisor_spec with auto_shutdown, and stop it (a shutdown request to its line) "
        "when its work is done",
        spec.name, to_string(spec.auto_shutdown)));
  if (spec.significant)
    throw std::invalid_argument(fmt::format(
        "backplane: dynamic supervisor '{}' has significant children, which need auto_shutdown, "
        "and a dynamic supervisor has none (as OTP's simple_one_for_one); leave `significant` "
        "false, and mark the dynamic supervisor itself significant in its parent's "
        "supervisor_spec if its end should end the tree",
        spec.name));
  // The template's policies, checked as a child spec's.
  child_spec c;
  c.id = spec.child_name.empty() ? std::string("child") : spec.child_name;
  c.start = [](child_context&) -> start_result { return start_error{}; };
  c.shutdown = spec.shutdown;
  c.backoff = spec.backoff;
  validate(c);
}

dynamic_supervisor_base::impl_ptr dynamic_supervisor_base::make(executor_type ex,
                                                                dynamic_supervisor_spec spec) {
  validate(spec);
  std::string path = spec.name;
  auto impl = std::make_shared<detail::dynamic_supervisor_impl>(std::move(ex), std::move(spec),
                                                                std::move(path), nullptr);
  asio::co_spawn(impl->executor(), impl->run(impl), [impl](std::exception_ptr e) {
    if (e) impl->crashed(e);  // its own bookkeeping failed: a fault, never silence
  });
  return impl;
}

asio::any_io_executor dynamic_supervisor_base::executor_of(impl_ptr const& impl) {
  return impl->executor();
}

device_id dynamic_supervisor_base::id() const { return impl_->id(); }
line dynamic_supervisor_base::line() const { return impl_->line(); }
std::string const& dynamic_supervisor_base::path() const { return impl_->path(); }

void dynamic_supervisor_base::start_child(impl_ptr const& impl, start_function start,
                                          handler_t<device_id> h) {
  asio::post(impl->executor(), [impl, start = std::move(start), h = std::move(h)]() mutable {
    guarded(impl, [&] { impl->api_start_child(std::move(start), std::move(h)); });
  });
}

void dynamic_supervisor_base::terminate_child(impl_ptr const& impl, device_id child,
                                              void_handler_t h) {
  asio::post(impl->executor(), [impl, child, h = std::move(h)]() mutable {
    guarded(impl, [&] { impl->api_terminate_child(child, std::move(h)); });
  });
}

void dynamic_supervisor_base::which_children(impl_ptr const& impl,
                                             handler_t<std::vector<dynamic_child_info>> h) {
  asio::post(impl->executor(), [impl, h = std::move(h)]() mutable {
    guarded(impl, [&] { impl->api_which_children(std::move(h)); });
  });
}

void dynamic_supervisor_base::count_children(impl_ptr const& impl, handler_t<child_counts> h) {
  asio::post(impl->executor(), [impl, h = std::move(h)]() mutable {
    guarded(impl, [&] { impl->api_count_children(std::move(h)); });
  });
}

void dynamic_supervisor_base::stop(impl_ptr const& impl, bool request,
                                   handler_t<supervisor_exit> h) {
  asio::post(impl->executor(), [impl, request, h = std::move(h)]() mutable {
    guarded(impl, [&] { impl->api_stop(request, std::move(h)); });
  });
}

start_result dynamic_supervisor_base::start_nested(dynamic_supervisor_spec const& spec,
                                                   child_context& ctx,
                                                   std::function<void(impl_ptr)> const& started) {
  auto const* parent = static_cast<supervisor_spec const*>(ctx.parent_options);
  auto impl = std::make_shared<detail::dynamic_supervisor_impl>(
      ctx.executor, spec, ctx.supervisor + "/" + ctx.id, parent);
  impl->adopt_device(std::move(ctx.device));
  // Runs on the nested supervisor's executor (the child's).
  if (ctx.on_kill) *ctx.on_kill = [impl] { impl->kill_all(); };
  if (started) started(impl);
  return detail::nested_dynamic_life(std::move(impl), &ctx.device);
}

}  // namespace backplane
