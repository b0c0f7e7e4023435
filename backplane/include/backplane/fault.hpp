#pragma once
// fault: why a device disconnected unsuccessfully.

#include <backplane/detail/config_check.hpp>
#include <backplane/device_id.hpp>

#include <cstdint>

namespace backplane {

/// The reason carried by an unsuccessful disconnect.
///
/// - `drop`:    the device was destroyed while still connected.
/// - `error`:   its work returned an error or threw.
/// - `cascade`: a device it monitored faulted, so it faulted in sympathy;
///              `origin()` names that device.
///
/// A plain value (16 bytes); thread-safe to copy.
class fault {
 public:
  enum class kind : std::uint8_t { drop, error, cascade };

  [[nodiscard]] static constexpr fault drop() noexcept { return fault(kind::drop, {}); }
  [[nodiscard]] static constexpr fault error() noexcept { return fault(kind::error, {}); }
  [[nodiscard]] static constexpr fault cascade(device_id origin) noexcept {
    return fault(kind::cascade, origin);
  }

  [[nodiscard]] constexpr kind what() const noexcept { return kind_; }
  [[nodiscard]] constexpr bool is_drop() const noexcept { return kind_ == kind::drop; }
  [[nodiscard]] constexpr bool is_error() const noexcept { return kind_ == kind::error; }
  [[nodiscard]] constexpr bool is_cascade() const noexcept { return kind_ == kind::cascade; }
  /// For `cascade`, the device whose fault we followed; the nobody id otherwise.
  [[nodiscard]] constexpr device_id origin() const noexcept { return origin_; }

  friend constexpr bool operator==(fault, fault) noexcept = default;

 private:
  constexpr fault(kind k, device_id origin) noexcept : origin_(origin), kind_(k) {}
  device_id origin_;
  kind kind_;
};

}  // namespace backplane
