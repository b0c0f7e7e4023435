#pragma once
// returned_error: an error a managed work returned by value, as the cause of
// its device's fault::error disconnect.

#include <backplane/detail/config_check.hpp>

#include <fmt/core.h>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace backplane {

namespace detail {
/// What a returned error says about itself, computed once, when first asked.
struct returned_description;
}  // namespace detail

/// The cause `manage`, `part_manage` and `spawn_managed` attach to the
/// `fault::error()` disconnect of a device whose work returned an error `E`
/// by value, so that whoever hears the disconnect (a supervisor's report, a
/// log line) can say what the error was:
///
/// - an error code (`boost::system::error_code`, `std::error_code`, an error
///   enum): `category()`, `code()` and `message()` (the category's text);
/// - anything fmt can format (`std::string`, an int, a type with a
///   `fmt::formatter`): `message()`, the formatted value;
/// - anything else: `type_name()` alone, the demangled type.
///
/// `what()` is one line: "category: message", the message, or the type name.
///
/// The error is copied into the exception when the work ends; describing it
/// (formatting, asking the category, demangling) waits until an accessor is
/// first called, so a disconnect nobody reads costs one allocation.
/// Thread-safety: the accessors may be called from any thread, concurrently
/// (monitors on other threads share the one exception). An accessor that
/// cannot describe (no memory) answers with empty text; none throws.
class returned_error : public std::exception {
 public:
  enum class kind : unsigned char {
    error_code,  ///< category(), code() and message() are set
    formatted,   ///< message() is the value as fmt formats it
    opaque,      ///< only type_name()
  };

  returned_error(returned_error const& o) noexcept : std::exception(o) {}
  returned_error& operator=(returned_error const&) = delete;
  ~returned_error() override;

  [[nodiscard]] char const* what() const noexcept override;
  [[nodiscard]] kind how() const noexcept;
  /// The error code's message, or the formatted value; empty for opaque.
  [[nodiscard]] std::string_view message() const noexcept;
  /// The error code's category name ("generic", "system", ...); empty otherwise.
  [[nodiscard]] std::string_view category() const noexcept;
  /// The error code's value; nullopt otherwise.
  [[nodiscard]] std::optional<int> code() const noexcept;
  /// The returned type, demangled ("std::__cxx11::basic_string<...>", "my::error").
  [[nodiscard]] std::string_view type_name() const noexcept;

 protected:
  returned_error() noexcept = default;
  /// Fills `out` for the error held by the derived class (called once).
  virtual void describe(detail::returned_description& out) const = 0;

 private:
  detail::returned_description const& described() const noexcept;
  mutable std::atomic<detail::returned_description*> described_{nullptr};
};

namespace detail {

// The compiled halves of describing (src/returned_error.cpp).
void describe_returned_code(boost::system::error_code const& ec, std::type_info const& type,
                            returned_description& out);
void describe_returned_code(std::error_code const& ec, std::type_info const& type,
                            returned_description& out);
void describe_returned_text(std::string text, std::type_info const& type,
                            returned_description& out);
void describe_returned_type(std::type_info const& type, returned_description& out);

/// The error `E`, kept by value; how it is described is picked at compile time.
template <class E>
class returned_error_of final : public backplane::returned_error {
 public:
  explicit returned_error_of(E const& e) : error_(e) {}

 private:
  void describe(returned_description& out) const override {
    if constexpr (std::is_same_v<E, std::error_code>) {
      // Not through boost's error_code, which would wrap its category.
      describe_returned_code(error_, typeid(E), out);
    } else if constexpr (std::is_convertible_v<E const&, boost::system::error_code>) {
      describe_returned_code(boost::system::error_code(error_), typeid(E), out);
    } else if constexpr (fmt::is_formattable<E>::value) {
      describe_returned_text(fmt::vformat("{}", fmt::make_format_args(error_)), typeid(E), out);
    } else {
      describe_returned_type(typeid(E), out);
    }
  }
  E error_;
};

/// An error type that is not copyable is described by its type alone.
struct returned_opaque final : backplane::returned_error {
  explicit returned_opaque(std::type_info const& t) noexcept : type_(&t) {}

 private:
  void describe(returned_description& out) const override { describe_returned_type(*type_, out); }
  std::type_info const* type_;
};

}  // namespace detail

/// A `returned_error` holding a copy of `e`, as an exception_ptr (the cause
/// of a `fault::error()` disconnect). Null if even that cannot be allocated.
template <class E>
[[nodiscard]] std::exception_ptr make_returned_error(E const& e) noexcept {
  try {
    if constexpr (std::is_copy_constructible_v<E>) {
      return std::make_exception_ptr(detail::returned_error_of<E>(e));
    } else {
      return std::make_exception_ptr(detail::returned_opaque(typeid(E)));
    }
  } catch (...) {
    return nullptr;
  }
}

}  // namespace backplane
