#pragma once
// How long a cancelled child has to end before its supervisor abandons it.
// One rule for the static and the dynamic supervisor.

#include <backplane/supervisor/child_spec.hpp>

#include <chrono>

namespace backplane::detail {

/// A child that was cancelled (a brutal kill, or the cancel that follows a
/// passed shutdown timeout) and still runs after this long is unlinked,
/// reported (`shutdown_error`, `kill_timeout`, action `abandon`) and
/// forgotten, so that no supervisor ever hangs on it: its shutdown timeout
/// once more, or 5 s for `brutal` (and a zero timeout). `infinity` has no
/// grace: such a child is waited for, as the policy says.
[[nodiscard]] inline std::chrono::nanoseconds abandon_grace(shutdown_policy const& p) noexcept {
  if (p.is_timeout() && p.time() > std::chrono::nanoseconds::zero()) return p.time();
  return std::chrono::seconds(5);
}

}  // namespace backplane::detail
