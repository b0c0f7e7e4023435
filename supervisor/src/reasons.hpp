#pragma once
// How each way a child ends, fails to start or fails to stop becomes an
// event's typed reason. Private to src/.

#include <backplane/message.hpp>
#include <backplane/supervisor/events.hpp>

#include <exception>
#include <optional>
#include <string>

namespace backplane::detail {

/// A thrown exception: its demangled type, and what() for a std::exception.
[[nodiscard]] event_reason exception_reason(std::exception_ptr const& e);

/// A child's exit as its device's disconnect says it. `killed`: the
/// supervisor cancelled it (a fault::error is then reported as such);
/// `returned`: the error its managed work returned, already described.
[[nodiscard]] event_reason exit_reason(disconnected const& gone, bool killed,
                                       std::optional<event_reason> const& returned);

/// Whether a child the supervisor cancelled ended with a fault of its own
/// rather than as the kill's result (issue 8): a fault::error whose cause is
/// not the cancellation's boost::system::system_error(operation_aborted) —
/// the work threw something else, a managed work returned an error, or the
/// child disconnected its device itself with fault::error(), with or
/// without a cause. A drop or a cascade after the kill is its result (a
/// frame destroyed by the cancellation drops the device it held), and so is
/// a nested supervisor's (`nested`) plain fault::error().
[[nodiscard]] bool own_fault_after_kill(disconnected const& gone, bool nested) noexcept;

/// A start function that returned start_error{reason}.
[[nodiscard]] event_reason start_error_reason(std::string reason);

/// A reason of `kind` with a message only (shutdown_timeout, kill_timeout).
[[nodiscard]] event_reason message_reason(reason_kind kind, std::string message);

}  // namespace backplane::detail
