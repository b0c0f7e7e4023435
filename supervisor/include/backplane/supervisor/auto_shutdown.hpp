#pragma once
// auto_shutdown: when a supervisor ends by itself because its significant
// children have ended (OTP's `auto_shutdown` flag and `significant` children).

#include <cstdint>
#include <string_view>

namespace backplane {

/// Whether a supervisor shuts itself down when its significant children end
/// by themselves (`child_spec::significant`). Only a transient child's clean
/// exit or a temporary child's exit of any kind counts: those are the exits
/// that are not restarted. An exit the supervisor caused (terminate_child, a
/// group restart stopping a sibling, the supervisor's own stop) never counts.
/// The shutdown is clean: the other children are stopped in reverse start
/// order and the supervisor ends without a fault (OTP's reason `shutdown`),
/// so a parent restarts it only if it is permanent, and a parent whose
/// significant child it is may end in turn.
enum class auto_shutdown : std::uint8_t {
  never,            ///< the default; significant children are then invalid (as in OTP)
  any_significant,  ///< when any significant child ends by itself
  all_significant,  ///< when a significant child ends by itself and none is left
                    ///< running or waiting to restart
};

[[nodiscard]] constexpr std::string_view to_string(auto_shutdown a) noexcept {
  switch (a) {
    case auto_shutdown::never: return "never";
    case auto_shutdown::any_significant: return "any_significant";
    case auto_shutdown::all_significant: return "all_significant";
  }
  return "?";
}

}  // namespace backplane
