#pragma once
// service_exit: what a service's process returns, one value per way a supervision tree can end.

#include <cstdint>
#include <string_view>

namespace backplane {

/// The process exit status of `run_service`. The values are stable: unit files and
/// orchestrators key on them (`RestartPreventExitStatus=`, see examples/backplane-service.service).
///
/// | status | value | when | can a restart help? |
/// |---|---|---|---|
/// | `clean` | 0 | the tree stopped and every child stopped cleanly (a signal, or the root ended by
/// itself) | — | | `gave_up` | 3 | the root supervisor gave up: its restart intensity was exceeded
/// (or it ended with a fault) | yes | | `failed_start` | 4 | a child of the root failed to start,
/// so the root did not start | maybe (a dependency may come back) | | `forced` | 5 | a second
/// SIGTERM/SIGINT arrived during the graceful stop | no: an operator insisted | |
/// `deadline_exceeded` | 6 | the graceful stop outlasted `service_options::stop_deadline` | yes |
/// | `internal_error` | 70 | an exception escaped the event loop (EX_SOFTWARE) | yes |
/// | `bad_spec` | 78 | the root's spec is invalid (`validate` threw): fix the program (EX_CONFIG) |
/// no |
///
/// 1 and 2 are left to the shell and to programs that fail before the service runs.
enum class service_exit : std::uint8_t {
  clean = 0,
  gave_up = 3,
  failed_start = 4,
  forced = 5,
  deadline_exceeded = 6,
  internal_error = 70,
  bad_spec = 78,
};

/// "clean", "gave_up", ...: the enumerator's name.
[[nodiscard]] std::string_view to_string(service_exit s) noexcept;

/// The value to return from `main`.
[[nodiscard]] constexpr int to_int(service_exit s) noexcept { return static_cast<int>(s); }

}  // namespace backplane
