#pragma once
// supervisor_errc: how a supervisor's runtime API can fail.

#include <boost/system/error_code.hpp>

#include <stdexcept>
#include <string>
#include <type_traits>

namespace backplane {

enum class supervisor_errc {
  already_present = 1,  ///< start_child: a child with this id is stopped or waiting to restart
  running,              ///< start_child/restart_child/delete_child: the child is running
  restarting,           ///< delete_child/restart_child: the child is waiting to be restarted
  not_found,            ///< no child with this id
  start_failed,         ///< the start function failed (the crash report has the reason)
  supervisor_down,      ///< the supervisor has stopped or is stopping
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
