#pragma once
// One incarnation of a static supervisor's child: its device, the context its
// start function sees, and what the supervisor needs to stop it (child_run.cpp:
// how a run or a managed work ends). Private to src/.

#include <backplane/device.hpp>
#include <backplane/fault.hpp>
#include <backplane/message.hpp>
#include <backplane/supervisor/child_spec.hpp>
#include <backplane/supervisor/events.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace backplane::detail {

/// What every incarnation of one child shares, made once per record: the
/// strings its `child_context` refers to and the start function. Kept alive by
/// every running incarnation, since a start function that is a coroutine
/// lambda keeps using its closure (and the context's strings) after the
/// record is gone. A temporary child's start function is released once it
/// has started (OTP keeps no start arguments for temporary children).
struct child_identity {
  std::string supervisor;  // the supervisor's path
  std::string id;
  start_function start;
};

/// One incarnation of a child: its device, the context handed to the start
/// function, and what the supervisor needs to stop it. One allocation per
/// start, shared by the record and the run's completion handler, which keeps
/// it (and so the cancellation signal co_spawn hooked into) alive until the
/// coroutine is entirely done.
struct child_run final : detail::managed_end {
  child_run(std::shared_ptr<child_identity const> who, std::uint64_t inc,
            boost::asio::any_io_executor ex, void const* options)
      : identity(std::move(who)), ctx{dev,     identity->supervisor, identity->id,
                                      inc,     std::move(ex),        options,
                                      &on_kill} {}
  device dev;
  std::shared_ptr<child_identity const> identity;
  child_context ctx;
  boost::asio::cancellation_signal cancel;  // brutal kill; emitted on the child's executor
  std::atomic<bool> finished{false};
  std::atomic<bool> killed{false};  // the supervisor cancelled it
  /// Set by the start function (a nested supervisor), run instead of the
  /// cancellation on the child's executor.
  std::function<void()> on_kill;
  // A managed work only (start_result::managed): set on the child's executor
  // when a message ended it (a linked device's fault, a shutdown request):
  // the device then disconnects with `end_fault`, whatever the work returns.
  bool ended_by_message = false;
  /// A managed work the supervisor listens for (set before it starts).
  bool managed = false;
  std::optional<fault> end_fault;
  std::exception_ptr end_cause;  // with end_fault, when the supervisor knows why

  /// Applies a message heard on the device: true if it ends the child (a
  /// linked device's fault, a shutdown request), false if it is forgotten.
  bool ends_on(message const& m);
  void work_ended(std::exception_ptr thrown, returned_error const* error) override;
  /// Whether a report could use the description of an error the work
  /// returned (set before the launch): describing is not free.
  bool describe_errors = false;
  /// The error the managed work returned, described, if describe_errors.
  std::optional<event_reason> returned;
};

}  // namespace backplane::detail
