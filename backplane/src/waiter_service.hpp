#pragma once
// Per execution context: the device states that have parked waiters there.
// Asio destroys an I/O object's pending handlers when its context shuts down;
// a parked device waiter is such a handler, and it owns the coroutine frame
// that owns the device that owns the waiter. Without this service that cycle
// would leak whenever a context dies with coroutines still waiting.

#include "device_state.hpp"

#include <boost/asio/execution_context.hpp>

#include <mutex>

namespace backplane::detail {

class waiter_service final : public boost::asio::execution_context::service {
 public:
  using key_type = waiter_service;
  static boost::asio::execution_context::id id;

  explicit waiter_service(boost::asio::execution_context& ctx);

  /// The service of `ctx`, through a per-thread cache (a context lookup takes
  /// the registry lock; this runs on every first wait of a device).
  static waiter_service& of(boost::asio::execution_context& ctx);

  /// Lists `s` here, moving it from another service if need be.
  void enlist(device_state* s);
  /// Unlists `s` from whatever service holds it. Safe after that service's
  /// shutdown.
  static void delist(device_state* s) noexcept;

 private:
  void shutdown() override;
  void remove_locked(device_state* s) noexcept;

  std::mutex mu_;
  device_state* head_ = nullptr;
};

}  // namespace backplane::detail
