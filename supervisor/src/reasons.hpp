#pragma once
// How each way a child ends, fails to start or fails to stop becomes an
// event's typed reason. Private to src/.

#include <backplane/message.hpp>
#include <backplane/returned_error.hpp>
#include <backplane/supervisor/events.hpp>

#include <exception>
#include <optional>
#include <string>

namespace backplane::detail {

/// An error returned by value, as the core described it (kind error).
void describe_returned(backplane::returned_error const& e, event_reason& out);

/// A thrown exception: its demangled type, and what() for a std::exception.
/// A `returned_error` (the cause manage gives a work's returned error) is
/// reported as the error it describes.
[[nodiscard]] event_reason exception_reason(std::exception_ptr const& e);

/// A child's exit as its device's disconnect says it. `killed`: the
/// supervisor cancelled it (a fault::error is then reported as such);
/// `returned`: the error its managed work returned, already described.
[[nodiscard]] event_reason exit_reason(disconnected const& gone, bool killed,
                                       std::optional<event_reason> const& returned);

/// Whether a child the supervisor cancelled ended with a fault of its own
/// rather than as the kill's result (issue 8): a fault::error whose cause is
/// not the cancellation's boost::system::system_error(operation_aborted) —
/// the work threw something else after ignoring the kill, or the child
/// disconnected its device with a cause of its own. A plain fault::error()
/// is the kill's result: it is what `manage` ends with when cancelled, and a
/// run's own `disconnect(fault::error())` cannot be told from it. So are a
/// drop, a cascade, and a nested supervisor's (`nested`) end.
[[nodiscard]] bool own_fault_after_kill(disconnected const& gone, bool nested) noexcept;

/// A start function that returned start_error{reason}.
[[nodiscard]] event_reason start_error_reason(std::string reason);

/// A reason of `kind` with a message only (shutdown_timeout, kill_timeout).
[[nodiscard]] event_reason message_reason(reason_kind kind, std::string message);

}  // namespace backplane::detail
