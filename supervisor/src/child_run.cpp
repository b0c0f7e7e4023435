// A child's incarnation as it runs: the end of a run, and the listener and
// end of a managed work (child_run.hpp), and their launch.

#include "supervisor_impl.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>

#include <exception>
#include <new>
#include <stdexcept>

namespace asio = boost::asio;

namespace backplane::detail {

namespace {

/// The end of a child's run, on its executor: the run's frame is gone. A run
/// that threw, or returned leaving its device connected, is disconnected here
/// (with fault::error, or cleanly). The handler owns the incarnation, so the
/// context the start function saw outlives every frame that may use it.
struct run_finished {
  std::shared_ptr<child_run> run;
  void operator()(std::exception_ptr thrown) const {
    run->finished.store(true, std::memory_order_relaxed);
    if (run->dev.valid()) {
      if (thrown) {
        run->dev.disconnect(fault::error(), thrown);
      } else {
        run->dev.disconnect();
      }
    }
  }
};

/// The supervisor's ear on a managed child's device, on the child's
/// executor: what `manage` does with the mailbox while its work runs. A
/// clean exit of a linked device is forgotten; a fault or a shutdown request
/// decides how the child ends and cancels the work, whose end then
/// disconnects the device (child_run::work_ended). A disconnect completes a
/// pending receive (operation_aborted), so no listener outlives its device.
struct managed_listener {
  std::shared_ptr<child_run> run;
  void operator()(boost::system::error_code ec, message m) const;
};

void listen(std::shared_ptr<child_run> run) {
  device& d = run->dev;
  // A work that took its device (moved it, say into manage, or disconnected
  // it) owns what happens to it, as a run would: nothing to listen to.
  if (!d.valid()) return;
  asio::any_io_executor const& ex = run->ctx.executor;
  try {
    d.async_receive(asio::bind_executor(ex, managed_listener{run}));
  } catch (...) {
    // Nobody can listen (std::bad_alloc): the child ends with a fault, as a
    // run that threw would, rather than unheard.
    run->ended_by_message = true;
    run->end_fault = fault::error();
    run->end_cause = std::current_exception();
    run->cancel.emit(asio::cancellation_type::terminal);
  }
}

void managed_listener::operator()(boost::system::error_code ec, message m) const {
  if (run->finished.load(std::memory_order_relaxed) || run->ended_by_message) return;
  if (ec == asio::error::already_started) {
    // The start function (or the work's first step) left a receive of its own
    // parked on the device.
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

bool child_run::ends_on(message const& m) {
  if (auto const* gone = as_disconnected(m)) {
    if (!gone->fault) return false;  // a clean exit is forgotten, as with manage
    end_fault = fault::cascade(gone->sender);
  } else {
    end_fault.reset();  // a shutdown request: a clean end
  }
  ended_by_message = true;
  return true;
}

void child_run::work_ended(std::exception_ptr thrown, returned_error const* error) {
  finished.store(true, std::memory_order_relaxed);
  if (!dev.valid()) return;  // the work took its device: its new owner decides
  // A message that arrived as the work ended wins over the work's outcome,
  // as in manage (which looks at the mailbox first): the listener may not
  // have run yet.
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

void supervisor_impl::launch(std::shared_ptr<child_run> const& run,
                             std::optional<asio::awaitable<void>> body,
                             std::unique_ptr<detail::managed_launch> managed) {
  asio::any_io_executor const& cex = run->ctx.executor;
  if (managed) {
    // Launch first, then listen from the child's executor. The listener is
    // then armed behind the work's start (FIFO on a strand; inline when the
    // work started at once), so a cancellation never reaches a work before
    // it has begun: Asio 1.81's co_spawn cannot take one there (its entry
    // point checks the cancellation state again after catching the work's
    // exception, and that second throw escapes io_context::run instead of
    // reaching the completion handler). And the device is only touched on
    // the child's executor, where the work's end disconnects it.
    run->managed = true;
    managed->launch(cex, run->cancel.slot(), run);
    asio::dispatch(cex, [run] {
      if (!run->finished.load(std::memory_order_relaxed)) listen(run);
    });
  } else {
    asio::co_spawn(cex, std::move(*body),
                   asio::bind_cancellation_slot(run->cancel.slot(), run_finished{run}));
  }
}

}  // namespace backplane::detail
