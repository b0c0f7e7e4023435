#pragma once
// crash: why a managed device stopped, as returned by part_manage and manage.

#include <backplane/describe.hpp>
#include <backplane/detail/config_check.hpp>
#include <backplane/device_id.hpp>
#include <backplane/fault.hpp>

#include <boost/assert/source_location.hpp>

#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace backplane {

/// How `part_manage`/`manage` ended when it did not succeed. `E` is the
/// error type of the managed work (`boost::system::result<T, E>`).
///
/// - `power_off`: a shutdown was requested by `requester()`; the device
///   disconnected cleanly.
/// - `panic`:     the work threw; `exception()` holds what it threw. The
///   device disconnected with `fault::error()`.
/// - `error`:     the work returned `error_value()`. Device: `fault::error()`.
/// - `cascade`:   a monitored device `cascade_origin()` disconnected with
///   `cascade_fault()`. Device: `fault::cascade(origin)`.
template <class E>
class crash {
 public:
  enum class kind : std::uint8_t { power_off, panic, error, cascade };

  /// A power-off requested by nobody. It exists because
  /// boost::system::result::error() returns a default crash when it holds a
  /// value; the library never produces one.
  crash() noexcept : kind_(kind::power_off) {}

  [[nodiscard]] static crash power_off(device_id requester) {
    crash c(kind::power_off);
    c.id_ = requester;
    return c;
  }
  [[nodiscard]] static crash panic(std::exception_ptr e) {
    crash c(kind::panic);
    c.exception_ = std::move(e);
    return c;
  }
  [[nodiscard]] static crash error(E e) {
    crash c(kind::error);
    c.error_.emplace(std::move(e));
    return c;
  }
  [[nodiscard]] static crash cascade(device_id origin, backplane::fault f) {
    crash c(kind::cascade);
    c.id_ = origin;
    c.fault_ = f;
    return c;
  }

  [[nodiscard]] kind what() const noexcept { return kind_; }
  [[nodiscard]] bool is_power_off() const noexcept { return kind_ == kind::power_off; }
  [[nodiscard]] bool is_panic() const noexcept { return kind_ == kind::panic; }
  [[nodiscard]] bool is_error() const noexcept { return kind_ == kind::error; }
  [[nodiscard]] bool is_cascade() const noexcept { return kind_ == kind::cascade; }

  /// power_off: who asked. Nobody id otherwise.
  [[nodiscard]] device_id requester() const noexcept {
    return kind_ == kind::power_off ? id_ : device_id{};
  }
  /// panic: what the work threw. Null otherwise.
  [[nodiscard]] std::exception_ptr const& exception() const noexcept { return exception_; }
  /// error: what the work returned. Throws std::logic_error for other kinds.
  [[nodiscard]] E const& error_value() const {
    if (!error_)
      throw std::logic_error("backplane::crash::error_value: this crash is not an error");
    return *error_;
  }
  /// cascade: the monitored device that faulted. Nobody id otherwise.
  [[nodiscard]] device_id cascade_origin() const noexcept {
    return kind_ == kind::cascade ? id_ : device_id{};
  }
  /// cascade: how that device faulted.
  [[nodiscard]] backplane::fault cascade_fault() const noexcept { return fault_; }

  /// The fault this crash disconnected the device with, or nullopt for a
  /// clean power-off.
  [[nodiscard]] std::optional<backplane::fault> device_fault() const noexcept {
    switch (kind_) {
      case kind::power_off: return std::nullopt;
      case kind::cascade: return backplane::fault::cascade(id_);
      default: return backplane::fault::error();
    }
  }

 private:
  explicit crash(kind k) noexcept : kind_(k) {}
  kind kind_;
  device_id id_;
  backplane::fault fault_ = backplane::fault::error();
  std::exception_ptr exception_;
  std::optional<E> error_;
};

/// Thrown by `boost::system::result<T, crash<E>>::value()` when it holds a
/// crash. A panic's original exception stays reachable through `crash()`.
class crash_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Found by ADL from boost::system::result<T, crash<E>>::value().
template <class E>
[[noreturn]] void throw_exception_from_error(crash<E> const& c, boost::source_location const&) {
  if (c.is_panic()) std::rethrow_exception(c.exception());
  static constexpr char const* names[] = {"power_off", "panic", "error", "cascade"};
  throw crash_error(std::string("backplane: managed work crashed: ") +
                    names[static_cast<int>(c.what())]);
}

}  // namespace backplane
