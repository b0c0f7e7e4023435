#pragma once
// fmt formatters for the backplane's public value types.

#include <backplane/crash.hpp>
#include <backplane/detail/config_check.hpp>
#include <backplane/device_id.hpp>
#include <backplane/fault.hpp>
#include <backplane/link_error.hpp>
#include <backplane/link_mode.hpp>
#include <backplane/message.hpp>

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace backplane {

// One spelling for logs, tests and operators:
//   device_id  "#42"          link_mode  "monitor" | "notify" | "peer"
//   fault      "drop" | "error" | "cascade from #7"
//   message    "disconnected #3 cleanly" | "disconnected #3 (error)"
//              | "disconnected #3 (error: std::runtime_error: boom)" (with a cause)
//              | "shutdown requested by #1"
//              (disconnected and shutdown alone print the same)
//   link_error "device_down" | "link_down"
[[nodiscard]] std::string to_string(device_id id);
[[nodiscard]] std::string_view to_string(link_mode mode) noexcept;
[[nodiscard]] std::string to_string(fault f);
[[nodiscard]] std::string to_string(message const& m);
[[nodiscard]] std::string to_string(disconnected const& d);
[[nodiscard]] std::string to_string(shutdown const& s);
[[nodiscard]] std::string_view to_string(link_error e) noexcept;

/// "power_off by #1", "panic: std::runtime_error: boom", "error: <E>",
/// "cascade from #7 (error)". The error value is printed when fmt can format
/// `E`, otherwise "error".
template <class E>
[[nodiscard]] std::string to_string(crash<E> const& c) {
  switch (c.what()) {
    case crash<E>::kind::power_off: return "power_off by " + to_string(c.requester());
    case crash<E>::kind::panic: return "panic: " + describe(c.exception());
    case crash<E>::kind::error:
      if constexpr (fmt::is_formattable<E>::value) {
        return fmt::format("error: {}", c.error_value());
      } else {
        return "error";
      }
    case crash<E>::kind::cascade:
      return "cascade from " + to_string(c.cascade_origin()) + " (" + to_string(c.cascade_fault()) +
             ")";
  }
  return "unknown";
}

namespace detail {
/// Formats any type with a backplane::to_string overload as a string.
template <class T>
struct to_string_formatter : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(T const& v, Ctx& ctx) const {
    auto s = backplane::to_string(v);
    return fmt::formatter<std::string_view>::format(std::string_view(s), ctx);
  }
};
}  // namespace detail

}  // namespace backplane

template <>
struct fmt::formatter<backplane::device_id>
    : backplane::detail::to_string_formatter<backplane::device_id> {};
template <>
struct fmt::formatter<backplane::link_mode>
    : backplane::detail::to_string_formatter<backplane::link_mode> {};
template <>
struct fmt::formatter<backplane::fault> : backplane::detail::to_string_formatter<backplane::fault> {
};
template <>
struct fmt::formatter<backplane::message>
    : backplane::detail::to_string_formatter<backplane::message> {};
template <>
struct fmt::formatter<backplane::disconnected>
    : backplane::detail::to_string_formatter<backplane::disconnected> {};
template <>
struct fmt::formatter<backplane::shutdown>
    : backplane::detail::to_string_formatter<backplane::shutdown> {};
template <>
struct fmt::formatter<backplane::link_error>
    : backplane::detail::to_string_formatter<backplane::link_error> {};
template <class E>
struct fmt::formatter<backplane::crash<E>>
    : backplane::detail::to_string_formatter<backplane::crash<E>> {};
