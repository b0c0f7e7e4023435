#pragma once
// link_mode: which way disconnect notifications flow across a link.

#include <backplane/detail/config_check.hpp>

#include <cstdint>

namespace backplane {

/// How two devices are linked, seen from the device that asks for the link.
///
/// - `monitor`: I hear when the other device disconnects.
/// - `notify`:  the other device hears when I disconnect.
/// - `peer`:    both (`monitor | notify`).
///
/// Modes add up when a pair is linked more than once and subtract on unlink:
/// linking `monitor` then `notify` gives `peer`; unlinking `monitor` from a
/// `peer` link leaves `notify`.
enum class link_mode : std::uint8_t {
  monitor = 1,
  notify = 2,
  peer = 3,
};

[[nodiscard]] constexpr link_mode operator|(link_mode a, link_mode b) noexcept {
  return static_cast<link_mode>(static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b));
}

/// True when `mode` includes hearing about the other device.
[[nodiscard]] constexpr bool monitors(link_mode mode) noexcept {
  return (static_cast<std::uint8_t>(mode) & 1U) != 0;
}

/// True when `mode` includes telling the other device about us.
[[nodiscard]] constexpr bool notifies(link_mode mode) noexcept {
  return (static_cast<std::uint8_t>(mode) & 2U) != 0;
}

/// The same link seen from the other end: monitor <-> notify, peer stays peer.
[[nodiscard]] constexpr link_mode reversed(link_mode mode) noexcept {
  auto bits = static_cast<std::uint8_t>(mode);
  return static_cast<link_mode>(((bits & 1U) << 1U) | ((bits & 2U) >> 1U));
}

}  // namespace backplane
