#pragma once
// Not API. The compiled body behind spawn_managed: manage's rules applied to
// one co_spawned work and a callback receive on its device. The template
// (spawn_managed.hpp) only co_spawns the work and builds the typed result.

#include <backplane/detail/config_check.hpp>
#include <backplane/device.hpp>
#include <backplane/device_id.hpp>
#include <backplane/fault.hpp>
#include <backplane/line.hpp>
#include <backplane/message.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>

namespace backplane::detail {

/// How a managed work ended, once the rules have decided.
enum class managed_outcome : std::uint8_t { running, value, error, panic, cascade, power_off };

class managed_run {
 public:
  /// Owns `d`.
  managed_run(device d, boost::asio::any_io_executor ex) noexcept;
  /// Borrows `d`, which its owner keeps at its address until the end.
  managed_run(std::reference_wrapper<device> d, boost::asio::any_io_executor ex) noexcept;
  managed_run(managed_run const&) = delete;
  managed_run& operator=(managed_run const&) = delete;
  virtual ~managed_run();

  /// After the work was co_spawned (with `work_slot()`): hooks `op` (the end
  /// handler's slot, maybe unconnected) and arms the listener from the
  /// executor, behind the work's first resumption.
  static void start(std::shared_ptr<managed_run> const& self, boost::asio::cancellation_slot op);
  /// The work's co_spawn completion, on the executor: `thrown` if it threw,
  /// `returned_error` if it returned an error.
  static void work_ended(std::shared_ptr<managed_run> const& self, std::exception_ptr thrown,
                         bool returned_error);
  /// On the executor: ends the work as a shutdown request from `requester` would.
  void request_stop(device_id requester);

  [[nodiscard]] boost::asio::cancellation_slot work_slot() noexcept { return work_cancel_.slot(); }
  [[nodiscard]] backplane::line line() const { return d_->line(); }

 protected:
  /// The typed end: builds the handler's result from `end_`, `who_`,
  /// `cascade_fault_`, `panic_` (and the stored work result) and calls it.
  /// Called once, on the executor, after the device disconnected.
  virtual void complete() = 0;
  /// Clears the end handler's cancellation slot, for a run that never
  /// completed (its execution context was destroyed with the work parked).
  /// The typed half calls it in its destructor, before the handler (which
  /// may own the slot's signal) is destroyed.
  void forget_op_slot() noexcept;
  /// The cause for the disconnect of a work that returned an error.
  [[nodiscard]] virtual std::exception_ptr returned_cause() const noexcept = 0;

  managed_outcome end_ = managed_outcome::running;
  device_id who_;                         // cascade: the origin; power_off: the requester
  fault cascade_fault_ = fault::error();  // cascade: how the origin faulted
  std::exception_ptr panic_;              // panic: what the handler's crash holds

 private:
  friend struct managed_listener;
  friend struct managed_op_cancel;
  static void arm(std::shared_ptr<managed_run> const& self);
  static void listen(std::shared_ptr<managed_run> const& self);
  /// manage's rule for a message: a linked device's fault or a shutdown
  /// request decides the end (true); a clean exit is forgotten (false).
  bool ends_on(message const& m);
  /// The end is decided before the work finished: cancel it, once it has
  /// begun (before that, arm() does).
  void cancel_work();
  /// The listener cannot listen: the run ends as a throw would.
  void cannot_listen(std::exception_ptr why);
  void op_cancelled();

  device own_;  // the device, unless borrowed
  device* d_;   // &own_, or the borrowed device
  boost::asio::any_io_executor ex_;
  boost::asio::cancellation_signal work_cancel_;
  boost::asio::cancellation_slot op_slot_;
  std::exception_ptr disconnect_cause_;  // the cause the disconnect carries, if any
  bool armed_ = false;
  bool finished_ = false;
  bool completed_ = false;
};

}  // namespace backplane::detail
