// How each way a child ends becomes an event's typed reason, and the compiled
// halves of describing an error a managed work returned by value.

#include "reasons.hpp"

#include <backplane/returned_error.hpp>
#include <backplane/supervisor/detail/managed_launch.hpp>
#include <backplane/supervisor/pool_errors.hpp>

#include <boost/asio/error.hpp>
#include <boost/core/demangle.hpp>
#include <boost/system/system_error.hpp>

#include <cxxabi.h>

#include <typeinfo>

namespace backplane::detail {

namespace {
/// The type of the exception being handled, demangled.
std::string current_exception_type() {
  std::type_info const* t = abi::__cxa_current_exception_type();
  return t ? boost::core::demangle(t->name()) : std::string("unknown exception");
}
}  // namespace

void describe_returned(backplane::returned_error const& e, event_reason& out) {
  out.kind = reason_kind::error;
  switch (e.how()) {
    case backplane::returned_error::kind::error_code:
      out.error_category = e.category();
      out.error_code = e.code();
      out.message = e.message();
      break;
    case backplane::returned_error::kind::formatted: out.message = e.message(); break;
    case backplane::returned_error::kind::opaque: out.error_type = e.type_name(); break;
  }
}

event_reason exception_reason(std::exception_ptr const& e) {
  event_reason r;
  r.kind = reason_kind::exception;
  if (!e) return r;
  try {
    try {
      std::rethrow_exception(e);
    } catch (job_crashed const& ex) {
      // A pool worker that crashed under a job: the job's identity as typed
      // fields, so a log pipeline can join the report with the job's answer.
      r.exception_type = current_exception_type();
      r.message = ex.what();
      r.job = ex.sequence();
      r.job_key = ex.key();
    } catch (backplane::returned_error const& ex) {
      // manage's (or spawn_managed's) work returned an error by value: the
      // core describes it; the report gives the value, not an exception.
      describe_returned(ex, r);
    } catch (std::exception const& ex) {
      r.exception_type = current_exception_type();
      r.message = ex.what();
    } catch (...) {
      r.exception_type = current_exception_type();
    }
  } catch (...) {
    // Describing it failed (out of memory): the kind alone still says a lot.
  }
  return r;
}

event_reason exit_reason(disconnected const& gone, bool killed,
                         std::optional<event_reason> const& returned) {
  event_reason r;
  auto const& f = gone.fault;
  if (!f) {
    r.kind = reason_kind::clean;
    return r;
  }
  switch (f->what()) {
    case fault::kind::drop:
      return message_reason(reason_kind::drop, "the child's device was destroyed while connected");
    case fault::kind::cascade:
      r.kind = reason_kind::cascade;
      r.cascade_from = f->origin();
      return r;
    case fault::kind::error: break;
  }
  if (killed) return message_reason(reason_kind::killed, "cancelled by the supervisor");
  // The exception the child's run threw, or that manage's work threw.
  if (gone.cause) return exception_reason(gone.cause);
  if (returned) return *returned;
  r.kind = reason_kind::error;
  return r;
}

namespace {
bool cancellation(std::exception_ptr const& thrown) noexcept {
  if (!thrown) return false;
  try {
    std::rethrow_exception(thrown);
  } catch (boost::system::system_error const& e) {
    return e.code() == boost::asio::error::operation_aborted;
  } catch (...) {
    return false;
  }
}
}  // namespace

bool own_fault_after_kill(disconnected const& gone, bool nested) noexcept {
  return !nested && gone.fault && gone.fault->what() == fault::kind::error && gone.cause &&
         !cancellation(gone.cause);
}

event_reason start_error_reason(std::string reason) {
  return message_reason(reason_kind::start_error, std::move(reason));
}

event_reason message_reason(reason_kind kind, std::string message) {
  event_reason r;
  r.kind = kind;
  r.message = std::move(message);
  return r;
}

void describe_error_code(boost::system::error_code const& ec, event_reason& out) {
  out.kind = reason_kind::error;
  out.error_category = ec.category().name();
  out.error_code = ec.value();
  out.message = ec.message();
}

void describe_error_code(std::error_code const& ec, event_reason& out) {
  out.kind = reason_kind::error;
  out.error_category = ec.category().name();
  out.error_code = ec.value();
  out.message = ec.message();
}

void describe_formatted(std::string text, event_reason& out) {
  out.kind = reason_kind::error;
  out.message = std::move(text);
}

void describe_opaque(std::type_info const& type, event_reason& out) {
  out.kind = reason_kind::error;
  out.error_type = boost::core::demangle(type.name());
}

}  // namespace backplane::detail
