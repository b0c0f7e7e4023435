#pragma once
// supervisor_spec: a supervisor's flags and children, declared in code.

#include <backplane/supervisor/auto_shutdown.hpp>
#include <backplane/supervisor/child_spec.hpp>
#include <backplane/supervisor/clock.hpp>
#include <backplane/supervisor/events.hpp>

#include <spdlog/fwd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace backplane {

class supervisor;

/// Which children restart when one of them has to (OTP's strategies).
enum class restart_strategy : std::uint8_t {
  one_for_one,   ///< only that child
  one_for_all,   ///< all children: stop the others in reverse order, start all in order
  rest_for_one,  ///< that child and those declared after it
};

enum class report_format : std::uint8_t { text, json };

/// A supervisor's whole declaration. A nested supervisor is a child made by
/// `supervisor_child(id, spec)`; a tree reads top-down like an OTP child list.
struct supervisor_spec {
  std::string name = "supervisor";  ///< last element of the supervisor path
  restart_strategy strategy = restart_strategy::one_for_one;
  /// Restart intensity: more than `max_restarts` restarts within `period`
  /// stops every child and ends the supervisor with a fault. 0 means the
  /// first restartable exit ends it. `period` must be positive, except with
  /// `max_restarts == 0`, where it does not matter. Memory for the restart
  /// history grows with the restarts actually made, never with the limit.
  std::uint32_t max_restarts = 3;
  std::chrono::nanoseconds period = std::chrono::seconds(5);
  std::vector<child_spec> children{};
  /// Whether the supervisor ends by itself, cleanly, when its significant
  /// children end by themselves (auto_shutdown.hpp). Not inherited.
  backplane::auto_shutdown auto_shutdown = backplane::auto_shutdown::never;

  // --- options, inherited by nested supervisors when left empty ---
  std::shared_ptr<supervisor_clock> clock{};  ///< default: steady_supervisor_clock()
  /// Where reports go; default: the spdlog logger "backplane" (created on
  /// stderr if it does not exist). Pass a logger with a null sink to mute.
  std::shared_ptr<spdlog::logger> logger{};
  /// Default: text, or the parent's for a nested supervisor.
  std::optional<report_format> format{};
  /// Receives every event as a value (metrics, tests), on the supervisor's
  /// executor. Nested supervisors inherit it and run on their own strands, so
  /// in a tree on a multi-threaded context it must be thread-safe.
  std::function<void(supervisor_event const&)> observer{};
  /// Run each child on its own strand, made on the execution context behind
  /// the supervisor's executor (beside the supervisor's strand, not inside
  /// it, so children run in parallel). Needed on a multi-threaded context; a
  /// single-threaded one can turn it off. Works for io_context and
  /// thread_pool executors and strands of them; with any other executor the
  /// children share the supervisor's. Default: true, or the parent's for a
  /// nested supervisor.
  std::optional<bool> child_strands{};
  /// Called with the supervisor's handle each time it has started its
  /// children (a nested one after every restart, so the handle is always the
  /// current incarnation's): how a program reaches a nested supervisor's
  /// runtime API. Runs synchronously, on the thread that starts the
  /// supervisor (the parent's executor for a nested one). Not inherited.
  std::function<void(supervisor const&)> on_start{};
};

/// Throws std::invalid_argument saying what is wrong and what to do:
/// duplicate or empty child ids, missing start functions, a period that is
/// not positive, significant children under `auto_shutdown::never`, and
/// every check of `validate(child_spec)`.
void validate(supervisor_spec const& spec);

/// A child that is itself a supervisor (kind `supervisor`, shutdown
/// `infinity`, restart `permanent`). Restarting it starts it again from
/// `spec`'s declared children: children added at runtime are gone.
[[nodiscard]] child_spec supervisor_child(std::string id, supervisor_spec spec);

}  // namespace backplane
