#pragma once
// Not API. How a start function's managed work (an awaitable returning a
// result) reaches the compiled supervisor without the supervisor knowing its
// type: the one template step, co_spawn with a completion that says only
// "thrown, failed (and how to describe the error) or succeeded", is made
// here, in the caller's translation unit; everything else is in
// supervisor/src.

#include <backplane/supervisor/events.hpp>

#include <fmt/core.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <exception>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace backplane::detail {

/// An error a managed work returned by value, its type erased. Described
/// (into an event's reason) only when a report will be made of it:
/// formatting is not free and a restart cycle with nobody listening must not
/// pay for it. Valid only during the work_ended call it is passed to.
struct returned_error {
  void const* result;                                       ///< the work's result<T, E>
  void (*describe)(void const* result, event_reason& out);  ///< fills kind error + fields
};

// The compiled halves of the description (supervisor/src/reasons.cpp).
/// `error_category` (the category's name), `error_code` and `message`.
void describe_error_code(boost::system::error_code const& ec, event_reason& out);
void describe_error_code(std::error_code const& ec, event_reason& out);
/// `message`: the error as fmt formats it.
void describe_formatted(std::string text, event_reason& out);
/// `error_type`: the type's demangled name, for an error fmt cannot format.
void describe_opaque(std::type_info const& type, event_reason& out);

/// An error type reported as category + code + message: std::error_code, or
/// what converts to a boost::system::error_code (it, and error enums).
template <class E>
concept std_error_code = std::is_same_v<E, std::error_code>;
template <class E>
concept error_code_like = std::is_convertible_v<E const&, boost::system::error_code>;
/// An error type that fmt can format (std::string, int, a type with a
/// fmt::formatter, ...).
template <class E>
concept fmt_formattable = fmt::is_formattable<E>::value;

/// The one per-type step: picks, at compile time, how `E` is described, and
/// hands the work to a compiled function.
template <class R>
void describe_result_error(void const* result, event_reason& out) {
  using E = typename R::error_type;
  auto const& r = *static_cast<R const*>(result);
  if constexpr (std_error_code<E>) {
    // Not through boost's error_code, which would wrap its category.
    describe_error_code(r.error(), out);
  } else if constexpr (error_code_like<E>) {
    describe_error_code(boost::system::error_code(r.error()), out);
  } else if constexpr (fmt_formattable<E>) {
    E const e = r.error();
    describe_formatted(fmt::vformat("{}", fmt::make_format_args(e)), out);
  } else {
    describe_opaque(typeid(E), out);
  }
}

/// Where a managed work's end is delivered: the supervisor's record of one
/// incarnation. Called once, on the executor the work ran on.
class managed_end {
 public:
  virtual ~managed_end() = default;
  /// `thrown`: the exception that escaped the work, if any; `error`: the
  /// error the work returned, if it did (null otherwise).
  virtual void work_ended(std::exception_ptr thrown, returned_error const* error) = 0;
};

/// co_spawn's completion for a work returning `R` (a boost::system::result).
template <class R>
struct managed_done {
  std::shared_ptr<managed_end> to;
  void operator()(std::exception_ptr thrown, R r) const {
    if (!thrown && r.has_error()) {
      returned_error const error{&r, &describe_result_error<R>};
      to->work_ended(nullptr, &error);
    } else {
      to->work_ended(std::move(thrown), nullptr);
    }
  }
};

/// A work not yet started, its type erased.
class managed_launch {
 public:
  virtual ~managed_launch() = default;
  /// co_spawns the work on `ex` with `slot` as its cancellation slot; its end
  /// goes to `to`. Called at most once.
  virtual void launch(boost::asio::any_io_executor const& ex, boost::asio::cancellation_slot slot,
                      std::shared_ptr<managed_end> to) = 0;
};

template <class T, class E>
class managed_launch_of final : public managed_launch {
 public:
  using result_type = boost::system::result<T, E>;
  static_assert(std::is_default_constructible_v<result_type>,
                "backplane: a managed work returning boost::system::result<T, E> needs a default-"
                "constructible T (co_spawn makes one when the work throws); return "
                "result<void, E> if the value is not needed");
  explicit managed_launch_of(boost::asio::awaitable<result_type> w) : work_(std::move(w)) {}
  void launch(boost::asio::any_io_executor const& ex, boost::asio::cancellation_slot slot,
              std::shared_ptr<managed_end> to) override {
    boost::asio::co_spawn(
        ex, std::move(work_),
        boost::asio::bind_cancellation_slot(slot, managed_done<result_type>{std::move(to)}));
  }

 private:
  boost::asio::awaitable<result_type> work_;
};

}  // namespace backplane::detail
