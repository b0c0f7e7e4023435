#pragma once
// describe: turn an exception into one line an operator can read.

#include <backplane/detail/config_check.hpp>

#include <exception>
#include <string>

namespace backplane {

/// "type: what()" for the exception in `e`, e.g. "std::runtime_error: disk
/// full"; the demangled type alone for exceptions not derived from
/// std::exception; "none" for a null pointer. Never throws.
[[nodiscard]] std::string describe(std::exception_ptr const& e) noexcept;

}  // namespace backplane
