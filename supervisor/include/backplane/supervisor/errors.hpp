#pragma once
// supervisor_errc: how a supervisor's runtime API can fail.

#include <boost/system/error_code.hpp>

#include <stdexcept>
#include <string>
#include <type_traits>

namespace backplane {

/// How the calls of `supervisor` and `dynamic_supervisor` complete when they
/// fail (each call in supervisor.hpp and dynamic_supervisor.hpp lists its
/// values; below, the calls of `supervisor`). A cancelled wait completes with
/// `boost::asio::error::operation_aborted` instead.
enum class supervisor_errc {
  /// start_child: a child with this id is stopped or waiting to restart.
  already_present = 1,
  /// start_child (its `device` is the running child's), restart_child,
  /// delete_child: the child is running.
  running,
  /// restart_child, delete_child: the child is waiting to be restarted.
  restarting,
  /// terminate_child, restart_child, delete_child, which_child,
  /// get_childspec: no child with this id; find_supervisor: the path names
  /// no nested supervisor.
  not_found,
  /// start_child, restart_child: the start function threw or returned a
  /// start_error (child_start_result::reason says why, as the report does).
  start_failed,
  /// Every call but async_stop and async_wait: the supervisor has ended; the
  /// calls that act, and find_supervisor, also while it is stopping.
  supervisor_down,
};

[[nodiscard]] boost::system::error_category const& supervisor_category() noexcept;

[[nodiscard]] inline boost::system::error_code make_error_code(supervisor_errc e) noexcept {
  return {static_cast<int>(e), supervisor_category()};
}

/// What a nested supervisor's run throws when it gives up (too many restarts
/// in its period), after it has stopped all its children: its parent's crash
/// report then reads "exception: backplane::restart_intensity_exceeded: ...".
class restart_intensity_exceeded : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Why a supervisor failed to start (OTP's `{failed_to_start_child, Id, Reason}`).
struct start_failure {
  std::string id{};
  std::string reason{};
};

}  // namespace backplane

template <>
struct boost::system::is_error_code_enum<backplane::supervisor_errc> : std::true_type {};
