// A dynamic child's incarnation: launching its run or managed work, the
// supervisor's ear on a managed work's device, and its kill.

#include "dynamic_child.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>

#include <new>
#include <stdexcept>

namespace asio = boost::asio;

namespace backplane::detail {

namespace {

/// The end of a run, on its executor: a run that threw, or returned leaving
/// its device connected, is disconnected here. The handler owns the
/// incarnation, so the context outlives every frame that may use it.
struct run_finished {
  std::shared_ptr<child_incarnation> run;
  void operator()(std::exception_ptr thrown) const {
    run->finished.store(true, std::memory_order_relaxed);
    if (!run->dev.valid()) return;
    if (thrown) {
      run->dev.disconnect(fault::error(), thrown);
    } else {
      run->dev.disconnect();
    }
  }
};

/// What manage does with the mailbox while its work runs: a clean exit of a
/// linked device is forgotten; a fault or a shutdown request ends the child
/// and cancels the work, whose end disconnects the device.
struct listener {
  std::shared_ptr<child_incarnation> run;
  void operator()(boost::system::error_code ec, message m) const;
};

void listen(std::shared_ptr<child_incarnation> run) {
  device& d = run->dev;
  if (!d.valid()) return;  // the work took its device: its new owner decides
  asio::any_io_executor const& ex = run->ctx.executor;
  try {
    d.async_receive(asio::bind_executor(ex, listener{run}));
  } catch (...) {
    // Nobody can listen (std::bad_alloc): the child ends with a fault, as a
    // run that threw would, rather than unheard.
    run->ended_by_message = true;
    run->end_fault = fault::error();
    run->end_cause = std::current_exception();
    run->cancel.emit(asio::cancellation_type::terminal);
  }
}

void listener::operator()(boost::system::error_code ec, message m) const {
  if (run->finished.load(std::memory_order_relaxed) || run->ended_by_message) return;
  if (ec == asio::error::already_started) {
    run->ended_by_message = true;
    run->end_fault = fault::error();
    run->end_cause = std::make_exception_ptr(std::logic_error(
        "a receive was left parked on the device of a managed work; the supervisor listens on "
        "that device: do not receive on it, or return an awaitable<void> run instead"));
    run->cancel.emit(asio::cancellation_type::terminal);
    return;
  }
  if (ec == asio::error::no_memory) {
    // The receive could not be set up: nobody would hear the child's links,
    // so it ends with a fault, as a run that threw would.
    run->ended_by_message = true;
    run->end_fault = fault::error();
    run->end_cause = std::make_exception_ptr(std::bad_alloc());
    run->cancel.emit(asio::cancellation_type::terminal);
    return;
  }
  if (ec) return;  // the device disconnected: the work has ended
  if (run->ends_on(m)) {
    run->cancel.emit(asio::cancellation_type::terminal);
  } else {
    listen(run);
  }
}

}  // namespace

void child_incarnation::launch(std::shared_ptr<child_incarnation> const& self, start_result& r) {
  asio::any_io_executor const& ex = self->ctx.executor;
  if (!r.managed()) {
    asio::co_spawn(ex, r.take_run(),
                   asio::bind_cancellation_slot(self->cancel.slot(), run_finished{self}));
    return;
  }
  // Launched first, then listened to from the child's executor, so that no
  // cancellation reaches a work before it has begun (Asio 1.81's co_spawn
  // cannot take one there; see child_run.cpp).
  r.take_managed()->launch(ex, self->cancel.slot(), self);
  asio::dispatch(ex, [self] {
    if (!self->finished.load(std::memory_order_relaxed)) listen(self);
  });
}

void child_incarnation::kill(std::shared_ptr<child_incarnation> const& self) {
  asio::dispatch(self->ctx.executor, [self] {
    if (self->finished.load(std::memory_order_relaxed)) return;
    self->killed.store(true, std::memory_order_relaxed);
    if (self->on_kill) {
      self->on_kill();
    } else {
      self->cancel.emit(asio::cancellation_type::terminal);
    }
  });
}

bool child_incarnation::ends_on(message const& m) {
  if (auto const* gone = as_disconnected(m)) {
    if (!gone->fault) return false;
    end_fault = fault::cascade(gone->sender);
  } else {
    end_fault.reset();
  }
  ended_by_message = true;
  return true;
}

void child_incarnation::work_ended(std::exception_ptr thrown, returned_error const* error) {
  finished.store(true, std::memory_order_relaxed);
  if (!dev.valid()) return;
  // A message that arrived as the work ended wins, as in manage.
  while (!ended_by_message) {
    auto m = dev.try_receive();
    if (!m) break;
    (void)ends_on(*m);
  }
  if (ended_by_message) {
    if (end_fault) {
      dev.disconnect(*end_fault, end_cause);
    } else {
      dev.disconnect();
    }
  } else if (thrown) {
    dev.disconnect(fault::error(), thrown);
  } else if (error) {
    // Described before the disconnect, which publishes it to the supervisor.
    if (describe_errors) error->describe(error->result, returned.emplace());
    dev.disconnect(fault::error());
  } else {
    dev.disconnect();
  }
}

namespace {
thread_local std::shared_ptr<child_incarnation> const* starting = nullptr;
}  // namespace

std::shared_ptr<child_incarnation> const* starting_incarnation() noexcept { return starting; }

starting_scope::starting_scope(std::shared_ptr<child_incarnation> const& run) noexcept
    : previous_(starting) {
  starting = &run;
}

starting_scope::~starting_scope() { starting = previous_; }

}  // namespace backplane::detail
