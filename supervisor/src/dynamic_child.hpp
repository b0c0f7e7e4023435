#pragma once
// One incarnation of a dynamic supervisor's child: its device, the context its
// start function sees, and how its run or managed work is launched, listened
// to and killed. Private to src/.
//
// The rules are the supervisor's (child_spec.hpp, start_result): a run owns
// its device; a managed work runs under manage's rules in one coroutine, the
// supervisor listening on its device. This file holds the same rules as the
// supervisor's child_run in child_run.cpp; they are to share one home
// once that file's restructuring lands (a child_run of their own).

#include <backplane/device.hpp>
#include <backplane/fault.hpp>
#include <backplane/message.hpp>
#include <backplane/supervisor/child_spec.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace backplane::detail {

/// What every incarnation of every child of one dynamic supervisor shares:
/// the strings their child_context refers to.
struct incarnation_shared {
  std::string supervisor;  // the supervisor's path
  std::string id;          // the template's child name
};

struct child_incarnation final : managed_end {
  child_incarnation(std::shared_ptr<incarnation_shared const> s, std::uint64_t inc,
                    boost::asio::any_io_executor ex, void const* options)
      : shared(std::move(s)), ctx{dev,     shared->supervisor, shared->id,
                                  inc,     std::move(ex),      options,
                                  &on_kill} {}

  device dev;
  std::shared_ptr<incarnation_shared const> shared;
  child_context ctx;
  boost::asio::cancellation_signal cancel;  // emitted on the child's executor
  std::atomic<bool> finished{false};
  std::atomic<bool> killed{false};
  std::function<void()> on_kill;  // set by a nested supervisor's start function
  // A managed work only: a message that ended it decides the device's fault.
  bool ended_by_message = false;
  std::optional<fault> end_fault;
  std::exception_ptr end_cause;

  /// Launches what the start function returned (a run or a managed work) on
  /// the child's executor.
  static void launch(std::shared_ptr<child_incarnation> const& self, start_result& r);
  /// Cancels it on its executor (or runs its on_kill), unless it has ended.
  static void kill(std::shared_ptr<child_incarnation> const& self);

  bool ends_on(message const& m);
  void work_ended(std::exception_ptr thrown, returned_error const* error) override;
  /// Whether a report could use the description of an error the work
  /// returned (set before the launch): describing is not free.
  bool describe_errors = false;
  /// The error the managed work returned, described, if describe_errors.
  std::optional<event_reason> returned;
};

/// The incarnation whose start function runs on this thread: set by the
/// dynamic supervisor around the call, for the library's own start functions
/// (a worker pool's workers) that drive its cancellation signal themselves.
/// Null outside a start function.
[[nodiscard]] std::shared_ptr<child_incarnation> const* starting_incarnation() noexcept;

/// Marks `run` as the starting incarnation for its scope.
class starting_scope {
 public:
  explicit starting_scope(std::shared_ptr<child_incarnation> const& run) noexcept;
  ~starting_scope();
  starting_scope(starting_scope const&) = delete;
  starting_scope& operator=(starting_scope const&) = delete;

 private:
  std::shared_ptr<child_incarnation> const* previous_;
};

}  // namespace backplane::detail
