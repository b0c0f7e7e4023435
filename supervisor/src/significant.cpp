// Significant children and auto_shutdown (OTP's EEP 56): which specs are
// valid, and whether a significant child's end shuts its supervisor down.

#include "supervisor_impl.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace backplane::detail {

void validate_significance(child_spec const& spec, std::string_view supervisor,
                           auto_shutdown flag) {
  if (!spec.significant || flag != auto_shutdown::never) return;
  throw std::invalid_argument(fmt::format(
      "backplane: child '{}' is significant but supervisor '{}' has auto_shutdown never (OTP "
      "rejects this too): set supervisor_spec::auto_shutdown to any_significant or "
      "all_significant, or make the child not significant",
      spec.id, supervisor));
}

std::string_view supervisor_impl::auto_shutdown_after(child_record const& ended) const {
  switch (spec_.auto_shutdown) {
    case auto_shutdown::never: return {};
    case auto_shutdown::any_significant: return "any_significant";
    case auto_shutdown::all_significant:
      // OTP's children_any over pids: a significant child running or
      // waiting to restart (pid {restarting, _}) keeps the supervisor up; an
      // ignored or terminated one (pid undefined) does not. A scan, but only
      // when a significant child has ended for good.
      for (auto const& c : children_) {
        if (c.get() != &ended && c->spec.significant && c->status != child_status::stopped)
          return {};
      }
      return "all_significant";
  }
  return {};
}

}  // namespace backplane::detail
