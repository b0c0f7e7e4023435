#pragma once
// link_error: why linking through a line failed.

#include <backplane/detail/config_check.hpp>

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace backplane {

/// Errors of linking through a line (linking two live `device`s cannot fail).
enum class link_error {
  /// The device asking for the link has already disconnected.
  device_down = 1,
  /// The device on the other end has already disconnected.
  link_down = 2,
};

/// The category of `link_error`; its name is "backplane.link".
[[nodiscard]] boost::system::error_category const& link_category() noexcept;

[[nodiscard]] inline boost::system::error_code make_error_code(link_error e) noexcept {
  return {static_cast<int>(e), link_category()};
}

}  // namespace backplane

template <>
struct boost::system::is_error_code_enum<backplane::link_error> : std::true_type {};
