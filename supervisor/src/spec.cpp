// Spec validation (OTP's check_childspecs) and nested supervisor children.

#include "supervisor_impl.hpp"

#include <backplane/supervisor/child_spec.hpp>
#include <backplane/supervisor/supervisor_spec.hpp>

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>
#include <unordered_set>

namespace backplane {

void validate(child_spec const& spec) {
  if (spec.id.empty())
    throw std::invalid_argument(
        "backplane: child_spec.id is empty; give every child an id unique within its supervisor");
  if (!spec.start)
    throw std::invalid_argument(fmt::format(
        "backplane: child '{}' has no start function; set child_spec.start (see worker())",
        spec.id));
  if (spec.shutdown.is_timeout() && spec.shutdown.time() < std::chrono::nanoseconds::zero())
    throw std::invalid_argument(fmt::format(
        "backplane: child '{}' has a negative shutdown timeout; use a positive duration, "
        "shutdown_policy::brutal() or shutdown_policy::infinity()",
        spec.id));
  if (spec.significant && spec.restart == restart_type::permanent)
    throw std::invalid_argument(fmt::format(
        "backplane: child '{}' is significant but permanent; only transient or temporary "
        "children may be significant (a permanent child is restarted whatever its exit, so it "
        "never ends its supervisor): make it transient or temporary, or not significant",
        spec.id));
  if (spec.backoff) {
    auto const& b = *spec.backoff;
    if (b.initial < std::chrono::nanoseconds::zero() || b.max < b.initial)
      throw std::invalid_argument(fmt::format(
          "backplane: child '{}' backoff needs 0 <= initial <= max (initial = {}ns, max = {}ns)",
          spec.id, b.initial.count(), b.max.count()));
    if (!(b.multiplier >= 1.0) || !std::isfinite(b.multiplier))
      throw std::invalid_argument(
          fmt::format("backplane: child '{}' backoff multiplier must be finite and >= 1 (got {})",
                      spec.id, b.multiplier));
    if (!(b.jitter >= 0.0 && b.jitter <= 1.0))
      throw std::invalid_argument(
          fmt::format("backplane: child '{}' backoff jitter must be within [0, 1] (got {})",
                      spec.id, b.jitter));
    if (b.reset_after < std::chrono::nanoseconds::zero())
      throw std::invalid_argument(
          fmt::format("backplane: child '{}' backoff reset_after must not be negative", spec.id));
  }
}

void validate(supervisor_spec const& spec) {
  if (spec.name.empty() || spec.name.find('/') != std::string::npos)
    throw std::invalid_argument(
        "backplane: supervisor_spec.name must be non-empty and contain no '/'; it is one element "
        "of the supervisor path");
  if (spec.period < std::chrono::nanoseconds::zero() ||
      (spec.period == std::chrono::nanoseconds::zero() && spec.max_restarts > 0))
    throw std::invalid_argument(fmt::format(
        "backplane: supervisor '{}' allows {} restarts in a period of {}ns; the restart period "
        "must be positive (OTP's default: max_restarts = 3 in period = 5s; max_restarts = 0 "
        "means 'never restart', with any period)",
        spec.name, spec.max_restarts, spec.period.count()));
  std::unordered_set<std::string> ids;
  for (auto const& c : spec.children) {
    validate(c);
    detail::validate_significance(c, spec.name, spec.auto_shutdown);
    if (!ids.insert(c.id).second)
      throw std::invalid_argument(fmt::format(
          "backplane: supervisor '{}' declares child id '{}' twice; child ids must be unique "
          "within a supervisor",
          spec.name, c.id));
  }
}

child_spec supervisor_child(std::string id, supervisor_spec spec) {
  validate(spec);
  child_spec c;
  c.id = std::move(id);
  c.kind = child_kind::supervisor;
  c.shutdown = shutdown_policy::infinity();
  auto shared = std::make_shared<supervisor_spec const>(std::move(spec));
  c.start = [shared](child_context& ctx) -> start_result {
    return detail::start_nested(*shared, ctx);
  };
  return c;
}

}  // namespace backplane
