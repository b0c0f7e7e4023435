// service_exit: names for logs and reports.

#include <backplane/service/service_exit.hpp>

namespace backplane {

std::string_view to_string(service_exit s) noexcept {
  switch (s) {
    case service_exit::clean: return "clean";
    case service_exit::gave_up: return "gave_up";
    case service_exit::failed_start: return "failed_start";
    case service_exit::forced: return "forced";
    case service_exit::deadline_exceeded: return "deadline_exceeded";
    case service_exit::internal_error: return "internal_error";
    case service_exit::bad_spec: return "bad_spec";
  }
  return "unknown";
}

}  // namespace backplane
