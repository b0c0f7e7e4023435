// spawn_managed's compiled body: manage's rules (message before value, a
// fault spreads and a clean exit is forgotten, the work cancelled and
// finished before the device disconnects) with one callback receive.

#include <backplane/detail/managed_run.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <new>
#include <stdexcept>
#include <utility>

namespace asio = boost::asio;

namespace backplane::detail {

/// The run's ear on its device, on the run's executor. A disconnect completes
/// a pending receive (operation_aborted), so no listener outlives the run's
/// end for long.
struct managed_listener {
  std::shared_ptr<managed_run> run;
  void operator()(boost::system::error_code ec, message m) const {
    managed_run& r = *run;
    if (r.finished_ || r.end_ != managed_outcome::running) return;
    if (ec == asio::error::already_started) {
      r.cannot_listen(std::make_exception_ptr(std::logic_error(
          "backplane::spawn_managed: a receive was left parked on the device of a managed work; "
          "spawn_managed listens on that device: do not receive on it")));
      return;
    }
    if (ec == asio::error::no_memory) {
      r.cannot_listen(std::make_exception_ptr(std::bad_alloc()));
      return;
    }
    if (ec) return;  // the device disconnected: the run has ended
    if (r.ends_on(m)) {
      r.cancel_work();
    } else {
      managed_run::listen(run);
    }
  }
};

/// In the end handler's cancellation slot. Holds a plain pointer: the run
/// clears the slot before it completes or is destroyed.
struct managed_op_cancel {
  // A constructor, not an aggregate: the slot builds it with parentheses,
  // which clang 14 does not take for aggregates.
  explicit managed_op_cancel(managed_run* r) noexcept : run(r) {}
  managed_run* run;
  void operator()(asio::cancellation_type type) const {
    if (type != asio::cancellation_type::none) run->op_cancelled();
  }
};

managed_run::managed_run(device d, asio::any_io_executor ex) noexcept
    : own_(std::move(d)), d_(&own_), ex_(std::move(ex)) {}

managed_run::managed_run(std::reference_wrapper<device> d, asio::any_io_executor ex) noexcept
    : d_(&d.get()), ex_(std::move(ex)) {}

managed_run::~managed_run() = default;

void managed_run::forget_op_slot() noexcept {
  if (op_slot_.is_connected()) op_slot_.clear();
}

void managed_run::start(std::shared_ptr<managed_run> const& self, asio::cancellation_slot op) {
  if (op.is_connected()) {
    self->op_slot_ = op;
    op.emplace<managed_op_cancel>(self.get());
  }
  // Armed from the executor, behind the work's first resumption (FIFO on a
  // strand or a one-thread context; inline when the work began inline): a
  // cancellation must never reach the work before it has begun, for Asio
  // 1.81's co_spawn cannot take one there (its entry point checks the
  // cancellation state again after catching the work's exception, and that
  // second throw escapes io_context::run instead of reaching the handler).
  asio::dispatch(self->ex_, [self] { arm(self); });
}

void managed_run::arm(std::shared_ptr<managed_run> const& self) {
  managed_run& r = *self;
  if (r.finished_) return;
  r.armed_ = true;
  if (r.end_ != managed_outcome::running) {
    // Stopped or cancelled before the work began.
    r.work_cancel_.emit(asio::cancellation_type::terminal);
    return;
  }
  listen(self);
}

void managed_run::listen(std::shared_ptr<managed_run> const& self) {
  managed_run& r = *self;
  // A borrowed device the work has taken (moved away, say into manage):
  // its new owner hears it; there is nothing left to listen to.
  if (!r.d_->valid()) return;
  try {
    r.d_->async_receive(asio::bind_executor(r.ex_, managed_listener{self}));
  } catch (...) {
    // Nobody can listen (std::bad_alloc): the work would run unheard.
    r.cannot_listen(std::current_exception());
  }
}

bool managed_run::ends_on(message const& m) {
  if (auto const* gone = as_disconnected(m)) {
    if (!gone->fault) return false;  // a clean exit is forgotten (the link died with it)
    end_ = managed_outcome::cascade;
    who_ = gone->sender;
    cascade_fault_ = *gone->fault;
    return true;
  }
  if (auto const* stop = as_shutdown(m)) {
    end_ = managed_outcome::power_off;
    who_ = stop->requester;
    return true;
  }
  return false;
}

void managed_run::cancel_work() {
  if (armed_) work_cancel_.emit(asio::cancellation_type::terminal);
}

void managed_run::cannot_listen(std::exception_ptr why) {
  end_ = managed_outcome::panic;
  panic_ = why;
  disconnect_cause_ = std::move(why);
  cancel_work();
}

void managed_run::op_cancelled() {
  if (finished_) return;
  if (end_ == managed_outcome::running) {
    // As manage's own wait would: the crash holds the operation_aborted
    // error and the disconnect is a plain fault::error().
    end_ = managed_outcome::panic;
    panic_ = std::make_exception_ptr(boost::system::system_error(asio::error::operation_aborted));
  }
  // Also when the end was already decided: the work, still running, is
  // cancelled again (one that shrugged off the first cancellation gets
  // another; a supervisor's kill after its shutdown request is that).
  cancel_work();
}

void managed_run::request_stop(device_id requester) {
  if (finished_ || end_ != managed_outcome::running) return;
  end_ = managed_outcome::power_off;
  who_ = requester;
  cancel_work();
}

void managed_run::work_ended(std::shared_ptr<managed_run> const& self, std::exception_ptr thrown,
                             bool returned_error) {
  managed_run& r = *self;
  r.finished_ = true;
  if (r.op_slot_.is_connected()) r.op_slot_.clear();
  // A message that arrived as the work ended wins over its outcome, as in
  // manage, which looks at the mailbox first. A receive whose completion is
  // on its way has not taken its message yet: it is still here.
  if (!r.d_->valid()) {
    // A borrowed device the work took: its new owner decides its end; the
    // handler still hears how the work ended.
    if (r.end_ == managed_outcome::running) {
      if (thrown) {
        r.end_ = managed_outcome::panic;
        r.panic_ = std::move(thrown);
      } else {
        r.end_ = returned_error ? managed_outcome::error : managed_outcome::value;
      }
    }
    r.completed_ = true;
    r.complete();
    return;
  }
  while (r.end_ == managed_outcome::running) {
    auto m = r.d_->try_receive();
    if (!m) break;
    (void)r.ends_on(*m);
  }
  switch (r.end_) {
    case managed_outcome::running:
      if (thrown) {
        r.end_ = managed_outcome::panic;
        r.d_->disconnect(fault::error(), thrown);
        r.panic_ = std::move(thrown);
      } else if (returned_error) {
        r.end_ = managed_outcome::error;
        r.d_->disconnect(fault::error(), r.returned_cause());
      } else {
        r.end_ = managed_outcome::value;
        r.d_->disconnect();
      }
      break;
    case managed_outcome::panic:
      if (r.disconnect_cause_) {
        r.d_->disconnect(fault::error(), std::move(r.disconnect_cause_));
      } else {
        r.d_->disconnect(fault::error());
      }
      break;
    case managed_outcome::cascade: r.d_->disconnect(fault::cascade(r.who_)); break;
    case managed_outcome::power_off: r.d_->disconnect(); break;
    case managed_outcome::value:
    case managed_outcome::error: break;  // not reached: decided only here
  }
  r.completed_ = true;
  r.complete();
}

}  // namespace backplane::detail
