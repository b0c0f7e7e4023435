#pragma once
// device_id: the name of a device, unique for the life of the process.

#include <backplane/detail/config_check.hpp>

#include <compare>
#include <cstdint>
#include <functional>

namespace backplane {

/// The identity of a device. Ids are allocated from a process-wide 64-bit
/// counter and are never reused, so a late notification can never be mistaken
/// for one about a newer device (the Rust crate used addresses, which are).
///
/// A default-constructed id is the "nobody" id (value 0); no device has it.
/// Thread-safety: a plain value; copy it freely.
class device_id {
 public:
  constexpr device_id() noexcept = default;
  constexpr explicit device_id(std::uint64_t value) noexcept : value_(value) {}

  /// A fresh id. Lock-free: each thread takes blocks of ids from a shared
  /// counter, so concurrent devices never contend on one cache line.
  [[nodiscard]] static device_id next() noexcept;

  [[nodiscard]] constexpr std::uint64_t value() const noexcept { return value_; }
  [[nodiscard]] constexpr explicit operator bool() const noexcept { return value_ != 0; }

  friend constexpr auto operator<=>(device_id, device_id) noexcept = default;
  friend constexpr bool operator==(device_id, device_id) noexcept = default;

 private:
  std::uint64_t value_ = 0;
};

}  // namespace backplane

template <>
struct std::hash<backplane::device_id> {
  std::size_t operator()(backplane::device_id id) const noexcept {
    return std::hash<std::uint64_t>{}(id.value());
  }
};
