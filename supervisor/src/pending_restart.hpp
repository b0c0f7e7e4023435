#pragma once
// One restart as OTP's restart(Strategy, Child, State) does it: the child it
// is for, the group it takes along, and when it may start. Private to src/.

#include <backplane/supervisor/clock.hpp>

#include <memory>
#include <span>
#include <vector>

namespace backplane::detail {

struct child_record;

/// A restart in progress, or parked: waiting for a backoff delay, or for its
/// retry after a failed start (OTP's try_again_restart). Parked, it is shared
/// by its members (`child_record::restart`), each `restarting`; it ends when
/// it fires (its members start), or when its child is stopped or removed (its
/// members stay stopped). A member stopped or removed alone leaves it.
struct pending_restart {
  /// The child the restart is for; after a failed start under rest_for_one,
  /// the child that failed (the retry continues from it).
  child_record* child = nullptr;
  /// The group in start order, `child` among them; empty under one_for_one,
  /// where the group is `child` alone (no vector for the common restart).
  std::vector<child_record*> group;
  /// Before the next start.
  supervisor_clock::duration delay{};
  /// A start failed: the retry goes behind what the mailbox holds, even
  /// without a delay, so that the supervisor keeps answering meanwhile.
  bool retry = false;
  /// Whether `group` has been made (one_for_all, rest_for_one).
  bool grouped = false;
  /// While parked with a delay.
  std::unique_ptr<supervisor_clock::timer> timer;

  [[nodiscard]] std::span<child_record* const> members() const noexcept {
    if (group.empty()) return {&child, 1};
    return group;
  }
};

}  // namespace backplane::detail
