// Completions go through any_completion_handler, whose associated executor
// turns our any_io_executor into an any_completion_executor: Asio keeps such a
// nested executor behind a reference count that ends with an acquire fence,
// which GCC flags under -fsanitize=thread (-Wtsan: TSan does not model fences).
// The count's release decrements and that fence are correct; the warning is
// not about our code.
#if defined(__GNUC__) && !defined(__clang__) && defined(__SANITIZE_THREAD__)
#pragma GCC diagnostic ignored "-Wtsan"
#endif

#include "supervisor_impl.hpp"

#include "nested_hook.hpp"
#include "reasons.hpp"
#include "report_delivery.hpp"
#include "stop_grace.hpp"

#include <backplane/format.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <new>
#include <stdexcept>

namespace asio = boost::asio;

namespace backplane::detail {

namespace {

using std::chrono::nanoseconds;

std::string duration_text(nanoseconds d) { return readable(d); }

/// A new strand for one child, on the execution context behind `ex`. When
/// `ex` is itself a strand (the supervisor's, on a multi-threaded context),
/// the child's strand is made on the executor inside it, not nested in it:
/// children run beside their supervisor and each other, each on its own
/// strand. (Nesting would also put a large executor inside any_io_executor,
/// whose shared-ownership path uses fences that ThreadSanitizer does not
/// model.) An executor of any other type gets no strand: the children then
/// share `ex` itself.
asio::any_io_executor child_executor(asio::any_io_executor const& ex) {
  using io_ex = asio::io_context::executor_type;
  using pool_ex = asio::thread_pool::executor_type;
  if (auto const* s = ex.target<asio::strand<io_ex>>())
    return asio::make_strand(s->get_inner_executor());
  if (auto const* e = ex.target<io_ex>()) return asio::make_strand(*e);
  if (auto const* s = ex.target<asio::strand<pool_ex>>())
    return asio::make_strand(s->get_inner_executor());
  if (auto const* e = ex.target<pool_ex>()) return asio::make_strand(*e);
  return ex;
}

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

supervisor_impl::supervisor_impl(asio::any_io_executor ex, supervisor_spec spec, std::string path,
                                 supervisor_spec const* parent)
    : ex_(std::move(ex)),
      spec_(std::move(spec)),
      path_(std::move(path)),
      window_(spec_.max_restarts, spec_.period),
      rng_(static_cast<std::minstd_rand::result_type>(std::random_device{}())) {
  if (parent) {
    if (!spec_.clock) spec_.clock = parent->clock;
    if (!spec_.logger) spec_.logger = parent->logger;
    if (!spec_.observer) spec_.observer = parent->observer;
    if (!spec_.format) spec_.format = parent->format;
    if (!spec_.child_strands) spec_.child_strands = parent->child_strands;
  }
  clock_ = spec_.clock ? spec_.clock : steady_supervisor_clock();
  logger_ = spec_.logger ? spec_.logger : default_report_logger();
  spec_.clock = clock_;
  spec_.logger = logger_;
  json_ = spec_.format.value_or(report_format::text) == report_format::json;
  child_strands_ = spec_.child_strands.value_or(true);
  spec_.format = json_ ? report_format::json : report_format::text;
  spec_.child_strands = child_strands_;
  id_ = dev_.id();
  line_ = dev_.line();
  for (auto& c : spec_.children) add_record(c);
  // The declared specs live on in the records; nested ones read `spec_` only
  // for the inherited options.
  spec_.children.clear();
}

void supervisor_impl::adopt_device(device d, device* home) {
  dev_ = std::move(d);
  set_home(home);
  id_ = dev_.id();
  line_ = dev_.line();
}

// ---------------------------------------------------------------- start ----

std::optional<start_failure> supervisor_impl::start_declared() {
  for (auto it = children_.begin(); it != children_.end();) {
    child_record& r = **it++;  // advanced first: an ignored temporary child goes
    event_reason why;
    switch (start_incarnation(r, why)) {
      case start_outcome::started: break;
      case start_outcome::ignored:
        // OTP: a temporary child that says ignore is not kept.
        if (r.spec.restart == restart_type::temporary) remove(&r);
        break;
      case start_outcome::failed:
        report(supervisor_event_kind::start_error, r, why, supervisor_action::fail_start);
        stopping_ = true;
        exit_.fault = fault::error();
        return start_failure{r.spec.id, to_string(why)};
    }
  }
  return std::nullopt;
}

void supervisor_impl::kill_all() {
  if (ended_) return;
  killed_ = true;
  exit_.fault = fault::error();
  stopping_ = true;
  wake();
}

void supervisor_impl::started() {
  if (spec_.on_start) spec_.on_start(supervisor_access::make(shared_from_this()));
}

child_record* supervisor_impl::add_record(child_spec spec) {
  auto r = std::make_unique<child_record>();
  r->identity =
      std::make_shared<child_identity>(child_identity{path_, spec.id, std::move(spec.start)});
  spec.start = nullptr;
  r->spec = std::move(spec);
  child_record* p = r.get();
  by_id_[p->spec.id] = p;
  p->pos = children_.insert(children_.end(), std::move(r));
  return p;
}

start_outcome supervisor_impl::start_incarnation(child_record& r, event_reason& why,
                                                 std::any* info) {
  ++r.incarnation;
  if (child_strands_ && !r.strand)
    r.strand = std::make_unique<asio::any_io_executor>(child_executor(ex_));
  auto run = std::make_shared<child_run>(r.identity, r.incarnation,
                                         child_strands_ ? *r.strand : ex_, &spec_);
  dev_.link(run->dev, link_mode::peer);
  run->describe_errors = reasons_wanted();
  backplane::line l = run->dev.line();
  std::optional<asio::awaitable<void>> body;
  std::unique_ptr<detail::managed_launch> managed;
  bool ignored = false;
  try {
    if (!r.identity->start) throw std::logic_error("the child's start function was released");
    start_result res = r.identity->start(run->ctx);
    if (!res.ok()) {
      why = start_error_reason(res.error().reason);
    } else if (res.ignored()) {
      ignored = true;
    } else if (!res.managed()) {
      body.emplace(res.take_run());
    } else {
      managed = res.take_managed();
    }
    if (info) *info = res.take_info();
  } catch (...) {
    why = exception_reason(std::current_exception());
  }
  if (!body && !managed) {
    // Forgotten before its device goes (with `run`, below), so nobody
    // hears of it unless the start function let it go first.
    retire(l);
    if (!ignored) return start_outcome::failed;
    // Not a failure: whoever the start function linked it to hears a clean end.
    if (run->dev.valid()) run->dev.disconnect();
    return start_outcome::ignored;
  }
  try {
    launch(run, std::move(body), std::move(managed));
  } catch (...) {
    // Asio could not start the child's coroutine (std::bad_alloc): a failed
    // start like any other, counted and retried. Nothing of it runs.
    why = exception_reason(std::current_exception());
    retire(l);
    return start_outcome::failed;
  }
  // Never called again: what it captured goes now, not when the child ends.
  if (r.spec.restart == restart_type::temporary) r.identity->start = nullptr;
  r.ln = l;
  r.dev = l.id();
  r.status = child_status::running;
  r.anchor = nullptr;
  r.run = run;
  if (r.spec.backoff) r.quiet_since = clock_->now();
  by_device_.insert(r.dev, &r);
  return start_outcome::started;
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

// ------------------------------------------------------------- mailbox ----

asio::awaitable<std::tuple<boost::system::error_code, message>> supervisor_impl::receive() {
  return dev_.async_receive(
      asio::bind_cancellation_slot(wake_.slot(), asio::as_tuple(asio::use_awaitable)));
}

void supervisor_impl::wake() { wake_.emit(asio::cancellation_type::total); }

void supervisor_impl::enqueue(job j) {
  if (ended_) return;
  jobs_.push_back(std::move(j));
  wake();
}

void supervisor_impl::note(message const& m, child_record const* target) {
  if (auto const* gone = as_disconnected(m)) {
    child_record* r = by_device_.find(gone->sender);
    if (!r) {
      if (retired_.erase(gone->sender)) return;
      // Not a child: a device that we monitor (our parent) went away. Its
      // fault is ours, as with manage; a clean exit is forgotten.
      if (gone->fault && !stopping_) {
        stopping_ = true;
        exit_.fault = fault::cascade(gone->sender);
      }
      return;
    }
    by_device_.erase(gone->sender);
    r->status = child_status::stopped;
    // Built only if some report could use it (describing an exception is not free).
    event_reason reason = reasons_wanted() ? exit_reason(*r, *gone) : event_reason{};
    bool const killed = r->run && r->run->killed.load(std::memory_order_relaxed) &&
                        !own_fault_after_kill(*gone, r->run->on_kill != nullptr);
    r->run.reset();
    if (r == target) {
      target_fault_ = gone->fault;
      target_reason_ = std::move(reason);
      target_killed_ = killed;
      return;
    }
    exits_.push_back(exit_note{r->spec.id, r->dev, r->incarnation, gone->fault, std::move(reason)});
    return;
  }
  if (as_shutdown(m)) stopping_ = true;
}

asio::awaitable<void> supervisor_impl::run(std::shared_ptr<supervisor_impl> self) {
  (void)self;
  while (!stopping_) {
    // Exits first, then calls, one at a time. A one_for_one restart is decided
    // and done right here; only what must wait for children to stop awaits.
    while (!exits_.empty() || (!jobs_.empty() && !stopping_)) {
      if (!exits_.empty()) {
        exit_note n = std::move(exits_.front());
        exits_.pop_front();
        auto const order = decide(n);
        if (!order) continue;
        if (group_needs_stops(order->failed)) {
          co_await restart_group(order->failed, order->delay);
        } else if (auto plan = restart_stopped_group(order->failed, order->delay)) {
          if (plan->started.empty()) {
            schedule_retry(*plan);
          } else {
            co_await settle_retry(std::move(*plan));
          }
        }
      } else {
        job j = std::move(jobs_.front());
        jobs_.pop_front();
        co_await j();
      }
    }
    if (stopping_) break;
    // Parked with nothing to do: no stop is in progress, so no deadline.
    clear_deadline();
    idle_ = true;
    auto [ec, m] = co_await receive();
    idle_ = false;
    if (ended_) co_return;  // crashed() while we waited
    if (!ec) note(m, nullptr);
  }
  if (ended_) co_return;  // crashed(): nothing more to do
  co_await stop_all();
  // Children that ended on their own meanwhile: reported, never restarted,
  // never waited for.
  while (!exits_.empty()) {
    decide_while_stopping(exits_.front());
    exits_.pop_front();
  }
  // Calls that queued behind the shutdown learn that the supervisor is down
  // (every job checks stopping_ first).
  while (!jobs_.empty()) {
    job j = std::move(jobs_.front());
    jobs_.pop_front();
    co_await j();
  }
  finish();
}

// ------------------------------------------------------------ stopping ----

void supervisor_impl::kill(child_record& r) {
  if (!r.run) return;
  asio::dispatch(r.run->ctx.executor, [st = r.run, ln = r.ln] {
    if (!st->finished.load(std::memory_order_relaxed)) {
      // A device already gone ended with a fault (or not) of its own before
      // the kill reached it: that end is reported as it was (OTP's DOWN
      // carries the child's own reason, not `killed`). The run, which may
      // still be awaiting, is cancelled all the same.
      if (ln.connected()) st->killed.store(true, std::memory_order_relaxed);
      if (st->on_kill) {
        st->on_kill();
      } else {
        st->cancel.emit(asio::cancellation_type::terminal);
      }
    }
  });
}

void supervisor_impl::request_stop(child_record& r) {
  if (!r.run || !r.run->managed || r.run->on_kill) {
    (void)r.ln.request_shutdown(id_);
    return;
  }
  // A managed work ends the way its listener ends it on a shutdown request (a clean end, the
  // work cancelled), without the request's trip through the device's mailbox: the
  // listener's wake-up is one executor pass per stopped child, and a group stop makes them in
  // a row. Done on the child's executor (inline when it is ours), where the listener runs. A
  // work that took its device is asked through its device, for its new owner to decide.
  asio::dispatch(r.run->ctx.executor, [run = r.run, ln = r.ln, requester = id_] {
    if (run->finished.load(std::memory_order_relaxed) || run->ended_by_message) return;
    if (!run->dev.valid()) {
      (void)ln.request_shutdown(requester);
      return;
    }
    (void)run->ends_on(backplane::shutdown{requester});
    run->cancel.emit(asio::cancellation_type::terminal);
  });
}

void supervisor_impl::retire(backplane::line const& l) {
  dev_.unlink_line(l, link_mode::peer);
  // Unlinked, it can no longer tell us it went away; if it already did, the
  // message is in our mailbox and must not be taken for a stranger's.
  if (!l.connected()) retired_.insert(l.id());
}

void supervisor_impl::abandon(child_record& r) {
  r.strand.reset();  // the abandoned run may keep it busy
  retire(r.ln);
  by_device_.erase(r.dev);
  r.status = child_status::stopped;
  r.run.reset();
}

void supervisor_impl::arm_deadline(supervisor_clock::time_point at) {
  deadline_ = at;
  deadline_passed_ = false;
  if (deadline_timer_ && deadline_timer_at_ <= at) return;  // fires in time; re-arms then
  deadline_timer_at_ = at;
  std::weak_ptr<supervisor_impl> weak = weak_from_this();
  deadline_timer_ = clock_->schedule(at, ex_, [weak] {
    if (auto self = weak.lock()) self->on_deadline_timer();
  });
}

void supervisor_impl::on_deadline_timer() {
  // Runs on ex_, from the timer's own callback: resetting it here is safe.
  deadline_timer_.reset();
  if (!deadline_) return;
  if (clock_->now() < *deadline_) {
    arm_deadline(*deadline_);  // armed for an earlier stop that has finished
    return;
  }
  deadline_passed_ = true;
  wake();
}

void supervisor_impl::clear_deadline() {
  deadline_.reset();
  deadline_passed_ = false;
  deadline_timer_.reset();
}

asio::awaitable<bool> supervisor_impl::await_exit(
    child_record& r, std::optional<supervisor_clock::time_point> deadline) {
  if (deadline) {
    arm_deadline(*deadline);
  } else {
    deadline_.reset();
    deadline_passed_ = false;
  }
  device_id const target = r.dev;
  bool kill_sent = r.spec.shutdown.is_brutal() || killed_;
  while (r.status == child_status::running && r.dev == target) {
    if (deadline_passed_) {
      deadline_.reset();
      deadline_passed_ = false;
      co_return false;
    }
    if (killed_ && !kill_sent) {
      // Our parent killed us while we waited for this child: no more waiting.
      kill(r);
      kill_sent = true;
    }
    auto [ec, m] = co_await receive();
    if (ended_) co_return true;  // crashed() while we waited
    if (!ec) note(m, &r);
  }
  // The timer stays armed for the next stop of the batch (cleared when idle).
  deadline_.reset();
  co_return true;
}

void supervisor_impl::release_members(child_record const& anchor) {
  for (auto& c : children_) {
    if (c->anchor == &anchor && c->status == child_status::restarting) {
      c->status = child_status::stopped;
      c->anchor = nullptr;
    }
  }
}

asio::awaitable<void> supervisor_impl::stop_child(child_record& r) {
  r.restart_timer.reset();
  ++r.restart_seq;
  if (r.status != child_status::running) {
    if (r.status == child_status::restarting) release_members(r);
    r.status = child_status::stopped;
    r.anchor = nullptr;
    co_return;
  }
  shutdown_policy const pol = r.spec.shutdown;
  // A child that ignores cancellation too is abandoned after this long.
  nanoseconds const grace = abandon_grace(pol);
  device_id const dev = r.dev;
  std::uint64_t const inc = r.incarnation;
  target_fault_.reset();
  target_killed_ = false;
  if (pol.is_brutal() || killed_) {
    kill(r);
  } else {
    request_stop(r);
  }
  std::optional<supervisor_clock::time_point> deadline;
  if (pol.is_timeout()) deadline = clock_->now() + pol.time();
  if (pol.is_brutal()) deadline = clock_->now() + grace;
  bool stopped = co_await await_exit(r, deadline);
  if (!stopped && !pol.is_brutal()) {
    report(supervisor_event_kind::shutdown_error, r.spec.id, dev, inc,
           message_reason(reason_kind::shutdown_timeout,
                          fmt::format("did not stop within {} of the shutdown request",
                                      duration_text(pol.time()))),
           supervisor_action::cancel);
    kill(r);
    stopped = co_await await_exit(r, clock_->now() + grace);
  }
  if (!stopped) {
    report(supervisor_event_kind::shutdown_error, r.spec.id, dev, inc,
           message_reason(reason_kind::kill_timeout,
                          fmt::format("ignored cancellation for {}", duration_text(grace))),
           supervisor_action::abandon);
    exit_.abandoned.push_back(r.spec.id);
    abandon(r);
    co_return;
  }
  // OTP reports a child that, asked to stop, ended with a fault of its own.
  if (target_fault_ && !target_killed_) {
    report(supervisor_event_kind::shutdown_error, r.spec.id, dev, inc, target_reason_,
           supervisor_action::none);
  }
}

asio::awaitable<void> supervisor_impl::stop_all() {
  for (auto it = children_.rbegin(); it != children_.rend(); ++it) co_await stop_child(**it);
}

void supervisor_impl::remove(child_record* r) {
  if (r->status == child_status::running) by_device_.erase(r->dev);
  // Only the child a pending group restart is for has members waiting on it
  // (the scan is for group restarts only: removing a child stays O(1)).
  if (r->status == child_status::restarting) release_members(*r);
  by_id_.erase(r->spec.id);
  children_.erase(r->pos);
}

child_record* supervisor_impl::find(std::string const& id) {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

// ------------------------------------------------------------ decisions ----

void supervisor_impl::give_up(std::string const& id, device_id dev, std::uint64_t incarnation,
                              event_reason const& reason) {
  report(supervisor_event_kind::intensity_exceeded, id, dev, incarnation, reason,
         supervisor_action::terminate);
  gave_up_because_ = intensity_text();
  stopping_ = true;
  exit_.intensity_exceeded = true;
  exit_.fault = fault::error();
}

std::string supervisor_impl::intensity_text() const {
  // "4 restarts > 3 in 5s": the restarts counted, with the one refused.
  auto const n = window_.in_window(clock_->now());
  return fmt::format("{} restart{} > {} in {}", n, n == 1 ? "" : "s", window_.max_restarts(),
                     duration_text(window_.period()));
}

std::string supervisor_impl::give_up_text() const {
  return fmt::format("supervisor {} gave up: {}", path_, gave_up_because_);
}

void supervisor_impl::decide_while_stopping(exit_note const& n) {
  report(supervisor_event_kind::child_terminated, n.id, n.dev, n.incarnation, n.reason,
         supervisor_action::none, std::nullopt, "supervisor stopping");
}

std::optional<supervisor_impl::restart_order> supervisor_impl::decide(exit_note const& n) {
  if (stopping_) {
    decide_while_stopping(n);
    return std::nullopt;
  }
  child_record* r = find(n.id);
  if (!r || r->dev != n.dev || r->status != child_status::stopped) {
    // An old incarnation, already dealt with: a group restart took it along
    // (or dropped its temporary spec) before its own exit came up.
    report(supervisor_event_kind::child_terminated, n.id, n.dev, n.incarnation, n.reason,
           supervisor_action::none, std::nullopt,
           !r                                   ? "spec removed"
           : r->status == child_status::stopped ? "old incarnation"
                                                : "restarted with its group");
    return std::nullopt;
  }
  bool const should_restart = r->spec.restart == restart_type::permanent ||
                              (r->spec.restart == restart_type::transient && n.f.has_value());
  if (!should_restart) {
    bool const temporary = r->spec.restart == restart_type::temporary;
    std::string_view const shut = r->spec.significant ? auto_shutdown_after(*r) : "";
    if (!shut.empty()) {
      report(supervisor_event_kind::child_terminated, n.id, n.dev, n.incarnation, n.reason,
             supervisor_action::auto_shutdown, std::nullopt, shut);
      stopping_ = true;
      exit_.auto_shutdown = true;
    } else {
      report(supervisor_event_kind::child_terminated, n.id, n.dev, n.incarnation, n.reason,
             supervisor_action::none, std::nullopt,
             temporary ? "temporary: spec removed" : "transient, exited cleanly");
    }
    if (temporary) remove(r);
    return std::nullopt;
  }
  // Counted first, so that the report shows the restart it asks for.
  if (window_.add(clock_->now())) {
    report(supervisor_event_kind::child_terminated, n.id, n.dev, n.incarnation, n.reason,
           supervisor_action::give_up);
    give_up(n.id, n.dev, n.incarnation, n.reason);
    return std::nullopt;
  }
  auto const delay = backoff_delay(*r);
  if (heard(supervisor_event_kind::child_terminated)) {
    report(supervisor_event_kind::child_terminated, n.id, n.dev, n.incarnation, n.reason,
           supervisor_action::restart,
           delay > nanoseconds::zero() ? std::optional(delay) : std::nullopt);
  }
  return restart_order{r, delay};
}

supervisor_impl::group_t supervisor_impl::group_of(child_record* failed) {
  group_t group;
  switch (spec_.strategy) {
    case restart_strategy::one_for_one: group.push_back(failed); break;
    case restart_strategy::one_for_all:
      for (auto& c : children_) group.push_back(c.get());
      break;
    case restart_strategy::rest_for_one: {
      bool after = false;
      for (auto& c : children_) {
        after = after || c.get() == failed;
        if (after) group.push_back(c.get());
      }
      break;
    }
  }
  return group;
}

bool supervisor_impl::group_needs_stops(child_record* failed) {
  if (spec_.strategy == restart_strategy::one_for_one) return false;
  for (child_record* c : group_of(failed))
    if (c != failed && c->status != child_status::stopped) return true;
  return false;
}

supervisor_clock::duration supervisor_impl::backoff_delay(child_record& r) {
  if (!r.spec.backoff) return supervisor_clock::duration::zero();
  auto const& b = *r.spec.backoff;
  auto const now = clock_->now();
  if (now - r.quiet_since >= b.reset_after) r.consecutive = 0;
  double base = static_cast<double>(b.initial.count()) *
                std::pow(b.multiplier, static_cast<double>(r.consecutive));
  base = std::min(base, static_cast<double>(b.max.count()));
  double factor = 1.0;
  if (b.jitter > 0) {
    std::uniform_real_distribution<double> dist(1.0 - b.jitter, 1.0 + b.jitter);
    factor = dist(rng_);
  }
  double const ns = std::min(base * factor, 9.0e18);
  auto const delay = nanoseconds(static_cast<std::int64_t>(ns));
  if (r.consecutive < std::numeric_limits<std::uint32_t>::max()) ++r.consecutive;
  // A retry right after the attempt is not quiet; the next start resets this.
  r.quiet_since = now + delay;
  return delay;
}

asio::awaitable<void> supervisor_impl::restart_group(child_record* failed,
                                                     supervisor_clock::duration delay) {
  group_t const group = group_of(failed);
  // Stop the rest of the group, last started first.
  for (auto it = group.rbegin(); it != group.rend(); ++it) {
    child_record* c = *it;
    if (c != failed && c->status != child_status::stopped) co_await stop_child(*c);
    if (stopping_) co_return;
  }
  if (auto plan = restart_stopped_group(failed, delay)) co_await settle_retry(std::move(*plan));
}

std::optional<supervisor_impl::retry_plan> supervisor_impl::restart_stopped_group(
    child_record* failed, supervisor_clock::duration delay) {
  if (spec_.strategy == restart_strategy::one_for_one) {
    failed->status = child_status::restarting;
    failed->anchor = nullptr;
  } else {
    mark_group(failed);
  }
  if (delay > supervisor_clock::duration::zero()) {
    schedule_restart(failed, delay);
    return std::nullopt;
  }
  return start_group_now(failed);
}

void supervisor_impl::mark_group(child_record* failed) {
  // Temporary children stopped as a side effect are dropped, not restarted.
  for (child_record* c : group_of(failed)) {
    if (c == failed) {
      c->status = child_status::restarting;
      c->anchor = nullptr;
    } else if (c->spec.restart == restart_type::temporary) {
      remove(c);
    } else {
      c->status = child_status::restarting;
      c->anchor = failed;
    }
  }
}

std::optional<supervisor_impl::retry_plan> supervisor_impl::start_group_now(child_record* anchor) {
  group_t members;
  if (spec_.strategy == restart_strategy::one_for_one) {
    // The common case, without building a group.
    if (anchor->status != child_status::restarting) return std::nullopt;
    event_reason why;
    switch (start_incarnation(*anchor, why)) {
      case start_outcome::started:
        if (heard(supervisor_event_kind::restarted))
          report(supervisor_event_kind::restarted, *anchor, {}, supervisor_action::none);
        return std::nullopt;
      case start_outcome::ignored: ignored_restart(*anchor); return std::nullopt;
      case start_outcome::failed: break;
    }
    members.push_back(anchor);
    return start_failed(anchor, anchor, {}, std::move(members), why);
  }
  for (auto& c : children_) {
    if (c->status == child_status::restarting && (c.get() == anchor || c->anchor == anchor))
      members.push_back(c.get());
  }
  group_t started;
  for (child_record* c : members) {
    event_reason why;
    switch (start_incarnation(*c, why)) {
      case start_outcome::started:
        if (heard(supervisor_event_kind::restarted))
          report(supervisor_event_kind::restarted, *c, {}, supervisor_action::none);
        started.push_back(c);
        continue;
      case start_outcome::ignored: ignored_restart(*c); continue;
      case start_outcome::failed: break;
    }
    return start_failed(anchor, c, std::move(started), std::move(members), why);
  }
  return std::nullopt;
}

std::optional<supervisor_impl::retry_plan> supervisor_impl::start_failed(child_record* anchor,
                                                                         child_record* c,
                                                                         group_t started,
                                                                         group_t members,
                                                                         event_reason const& why) {
  // This try is over; the next one counts toward intensity like any restart.
  std::uint64_t const failed_inc = c->incarnation;
  if (window_.add(clock_->now())) {
    report(supervisor_event_kind::start_error, c->spec.id, device_id{}, failed_inc, why,
           supervisor_action::give_up);
    give_up(c->spec.id, device_id{}, failed_inc, why);
    return std::nullopt;  // stop_all stops what this round started
  }
  if (spec_.strategy == restart_strategy::rest_for_one) {
    // OTP retries a restart of the child that failed to start: the children
    // before it, started by this try, stay up; the retry is of it and the
    // children after it (one_for_all's retry restarts them all).
    members.erase(members.begin(), std::find(members.begin(), members.end(), c));
    started.clear();
    anchor = c;
  }
  auto const delay = backoff_delay(*anchor);
  report(supervisor_event_kind::start_error, c->spec.id, device_id{}, failed_inc, why,
         supervisor_action::retry,
         delay > nanoseconds::zero() ? std::optional(delay) : std::nullopt);
  return retry_plan{anchor, std::move(started), std::move(members), delay};
}

void supervisor_impl::ignored_restart(child_record& c) {
  // OTP's restart with a start that returns ignore: the child's pid becomes
  // undefined, its spec stays, nothing is retried (restart_child may).
  c.status = child_status::stopped;
  c.anchor = nullptr;
}

asio::awaitable<void> supervisor_impl::start_group(child_record* anchor) {
  if (auto plan = start_group_now(anchor)) co_await settle_retry(std::move(*plan));
}

asio::awaitable<void> supervisor_impl::settle_retry(retry_plan p) {
  // A group restart that fails part-way stops what it restarted, last
  // started first, before it tries again.
  for (auto it = p.started.rbegin(); it != p.started.rend(); ++it) {
    co_await stop_child(**it);
    if (stopping_) co_return;
  }
  schedule_retry(p);
}

void supervisor_impl::schedule_retry(retry_plan const& p) {
  child_record* const anchor = p.anchor;
  for (child_record* m : p.members) {
    // Unless an exit heard meanwhile removed it or made it someone else's.
    if (m->status == child_status::running) continue;
    m->status = child_status::restarting;
    m->anchor = m == anchor ? nullptr : anchor;
  }
  schedule_restart(anchor, p.delay);
}

void supervisor_impl::schedule_restart(child_record* anchor, supervisor_clock::duration delay) {
  anchor->status = child_status::restarting;
  std::uint64_t const seq = ++anchor->restart_seq;
  std::string id = anchor->spec.id;
  std::weak_ptr<supervisor_impl> weak = weak_from_this();
  auto fire = [weak, id, seq] {
    auto self = weak.lock();
    if (!self) return;
    // The job is only ever run by run(), which keeps the supervisor alive.
    supervisor_impl* p = self.get();
    p->enqueue([p, id, seq]() -> asio::awaitable<void> {
      if (p->stopping_) co_return;
      child_record* r = p->find(id);
      if (!r || r->restart_seq != seq || r->status != child_status::restarting) co_return;
      r->restart_timer.reset();
      co_await p->start_group(r);
    });
  };
  if (delay > supervisor_clock::duration::zero()) {
    anchor->restart_timer = clock_->schedule(clock_->now() + delay, ex_, std::move(fire));
  } else {
    // A retry goes behind whatever is already waiting (OTP's try_again_restart
    // message), so the supervisor keeps answering while a start keeps failing.
    asio::post(ex_, std::move(fire));
  }
}

// -------------------------------------------------------------- ending ----

void supervisor_impl::crashed(std::exception_ptr e) noexcept {
  if (ended_) return;
  ended_ = true;
  stopping_ = true;
  exit_.fault = fault::error();
  exit_.failed_reports = report_failures_;
  clear_deadline();
  if (home_) {
    // A nested supervisor: its life rethrows, and the parent disconnects
    // the device with fault::error and this cause.
    *home_ = std::move(dev_);
  } else if (dev_.valid()) {
    dev_.disconnect(fault::error(), e);
  }
  auto waiters = std::move(exit_waiters_);
  for (auto& h : waiters) {
    try {
      std::move(h)(boost::system::error_code{}, exit_);
    } catch (...) {
      // A waiter we cannot tell (std::bad_alloc dispatching its reply) is
      // destroyed unanswered: Asio's rule for a handler that will never run.
    }
  }
}

void supervisor_impl::finish() {
  ended_ = true;
  exit_.failed_reports = report_failures_;
  clear_deadline();
  if (home_) {
    // A nested supervisor's run hands the device back; start_nested's body
    // disconnects it, with the reason in an exception if we gave up.
    *home_ = std::move(dev_);
  } else if (dev_.valid()) {
    if (exit_.intensity_exceeded) {
      // Whoever monitors the root hears why it gave up.
      dev_.disconnect(*exit_.fault,
                      std::make_exception_ptr(restart_intensity_exceeded(give_up_text())));
    } else {
      dev_.disconnect(exit_.fault);
    }
  }
  auto waiters = std::move(exit_waiters_);
  for (auto& h : waiters) {
    asio::post(ex_, [h = std::move(h), e = exit_]() mutable {
      std::move(h)(boost::system::error_code{}, std::move(e));
    });
  }
}

// ------------------------------------------------------------------ API ----

namespace {
// The handlers are supervisor::reply objects behind any_completion_handler:
// calling one dispatches it to its own executor.
template <class H, class... Args>
void complete(H h, asio::any_io_executor const& fallback, Args... args) {
  // Posted to the supervisor's executor first: never run inside a job of the
  // supervisor's loop.
  asio::post(fallback, [h = std::move(h), ... args = std::move(args)]() mutable {
    std::move(h)(std::move(args)...);
  });
}
/// For a call answered by the handler that the public API posted to us (so
/// never from inside the initiating function), outside any job: the handler
/// may run at once if its executor is ours, saving a trip through the queue.
template <class H, class... Args>
void complete_direct(H h, Args... args) {
  std::move(h)(std::move(args)...);
}
boost::system::error_code err(supervisor_errc e) { return make_error_code(e); }
}  // namespace

void supervisor_impl::api_start_child(child_spec spec, handler_t<child_start_result> h) {
  if (ended_ || stopping_)
    return complete(std::move(h), ex_, err(supervisor_errc::supervisor_down), child_start_result{});
  if (idle_ && jobs_.empty() && exits_.empty()) {
    // Parked at the top: nothing holds a child pointer, and we run in the
    // handler the API posted, so the reply may be dispatched.
    start_dynamic(std::move(spec), std::move(h), true);
    return;
  }
  auto call = std::make_shared<std::pair<child_spec, handler_t<child_start_result>>>(
      std::move(spec), std::move(h));
  enqueue([this, call]() -> asio::awaitable<void> {
    start_dynamic(std::move(call->first), std::move(call->second), false);
    co_return;
  });
}

void supervisor_impl::start_dynamic(child_spec spec, handler_t<child_start_result> h, bool direct) {
  child_start_result out;
  auto const reply = [&](boost::system::error_code ec) {
    if (direct) {
      complete_direct(std::move(h), ec, std::move(out));
    } else {
      complete(std::move(h), ex_, ec, std::move(out));
    }
  };
  if (stopping_) return reply(err(supervisor_errc::supervisor_down));
  if (child_record* r = find(spec.id)) {
    // OTP: a child waiting to restart is present, not running.
    bool const running = r->status == child_status::running;
    if (running) out.device = r->dev;
    return reply(err(running ? supervisor_errc::running : supervisor_errc::already_present));
  }
  child_record* r = add_record(std::move(spec));
  event_reason why;
  switch (start_incarnation(*r, why, &out.info)) {
    case start_outcome::started: out.device = r->dev; break;
    case start_outcome::ignored:
      out.ignored = true;
      // OTP: an ignored temporary child is not kept.
      if (r->spec.restart == restart_type::temporary) remove(r);
      break;
    case start_outcome::failed:
      report(supervisor_event_kind::start_error, r->spec.id, device_id{}, r->incarnation, why,
             supervisor_action::none, std::nullopt, "start_child: spec discarded");
      out.reason = std::move(why);
      remove(r);  // OTP: a failed dynamic start discards the spec
      return reply(err(supervisor_errc::start_failed));
  }
  reply(boost::system::error_code{});
}

void supervisor_impl::api_terminate_child(std::string id, void_handler_t h) {
  if (ended_ || stopping_)
    return complete(std::move(h), ex_, err(supervisor_errc::supervisor_down));
  auto shared_h = std::make_shared<void_handler_t>(std::move(h));
  enqueue([this, id = std::move(id), shared_h]() -> asio::awaitable<void> {
    if (stopping_) {
      complete(std::move(*shared_h), ex_, err(supervisor_errc::supervisor_down));
      co_return;
    }
    child_record* r = find(id);
    if (!r) {
      complete(std::move(*shared_h), ex_, err(supervisor_errc::not_found));
      co_return;
    }
    co_await stop_child(*r);
    if (r->spec.restart == restart_type::temporary) remove(r);
    complete(std::move(*shared_h), ex_, boost::system::error_code{});
  });
}

void supervisor_impl::api_restart_child(std::string id, handler_t<child_start_result> h) {
  if (ended_ || stopping_)
    return complete(std::move(h), ex_, err(supervisor_errc::supervisor_down), child_start_result{});
  auto shared_h = std::make_shared<handler_t<child_start_result>>(std::move(h));
  enqueue([this, id = std::move(id), shared_h]() -> asio::awaitable<void> {
    child_record* r = stopping_ ? nullptr : find(id);
    boost::system::error_code ec;
    child_start_result out;
    if (stopping_) {
      ec = err(supervisor_errc::supervisor_down);
    } else if (!r) {
      ec = err(supervisor_errc::not_found);
    } else if (r->status == child_status::running) {
      ec = err(supervisor_errc::running);
    } else if (r->status == child_status::restarting) {
      ec = err(supervisor_errc::restarting);
    } else {
      event_reason why;
      switch (start_incarnation(*r, why, &out.info)) {
        case start_outcome::started: out.device = r->dev; break;
        case start_outcome::ignored: out.ignored = true; break;  // stays stopped: may try again
        case start_outcome::failed:
          report(supervisor_event_kind::start_error, r->spec.id, device_id{}, r->incarnation, why,
                 supervisor_action::none, std::nullopt, "restart_child: spec kept");
          out.reason = std::move(why);
          ec = err(supervisor_errc::start_failed);  // OTP: the spec is kept
          break;
      }
    }
    complete(std::move(*shared_h), ex_, ec, std::move(out));
    co_return;
  });
}

void supervisor_impl::api_delete_child(std::string id, void_handler_t h) {
  if (ended_ || stopping_)
    return complete(std::move(h), ex_, err(supervisor_errc::supervisor_down));
  auto shared_h = std::make_shared<void_handler_t>(std::move(h));
  enqueue([this, id = std::move(id), shared_h]() -> asio::awaitable<void> {
    child_record* r = stopping_ ? nullptr : find(id);
    boost::system::error_code ec;
    if (stopping_) {
      ec = err(supervisor_errc::supervisor_down);
    } else if (!r) {
      ec = err(supervisor_errc::not_found);
    } else if (r->status == child_status::running) {
      ec = err(supervisor_errc::running);
    } else if (r->status == child_status::restarting) {
      ec = err(supervisor_errc::restarting);
    } else {
      remove(r);
    }
    complete(std::move(*shared_h), ex_, ec);
    co_return;
  });
}

void supervisor_impl::api_which_children(handler_t<std::vector<child_info>> h) {
  if (ended_) {
    return complete_direct(std::move(h), err(supervisor_errc::supervisor_down),
                           std::vector<child_info>{});
  }
  std::vector<child_info> out;
  out.reserve(children_.size());
  for (auto const& c : children_) {
    child_info i;
    i.id = c->spec.id;
    if (c->status == child_status::running) i.device = c->dev;
    i.kind = c->spec.kind;
    i.restart = c->spec.restart;
    i.status = c->status;
    i.incarnation = c->incarnation;
    out.push_back(std::move(i));
  }
  complete_direct(std::move(h), boost::system::error_code{}, std::move(out));
}

void supervisor_impl::api_count_children(handler_t<child_counts> h) {
  if (ended_)
    return complete_direct(std::move(h), err(supervisor_errc::supervisor_down), child_counts{});
  child_counts n;
  n.specs = children_.size();
  for (auto const& c : children_) {
    if (c->status == child_status::running) ++n.active;
    if (c->spec.kind == child_kind::supervisor) {
      ++n.supervisors;
    } else {
      ++n.workers;
    }
  }
  complete_direct(std::move(h), boost::system::error_code{}, n);
}

void supervisor_impl::api_budget(handler_t<restart_budget> h) {
  if (ended_) {
    return complete_direct(std::move(h), err(supervisor_errc::supervisor_down), restart_budget{});
  }
  auto const now = clock_->now();
  restart_budget b;
  b.restarts_in_window = window_.in_window(now);
  b.max_restarts = window_.max_restarts();
  b.period = window_.period();
  b.until_oldest_expires = window_.until_oldest_expires(now);
  complete_direct(std::move(h), boost::system::error_code{}, b);
}

void supervisor_impl::api_stop(bool request, handler_t<supervisor_exit> h) {
  if (ended_) return complete(std::move(h), ex_, boost::system::error_code{}, exit_);
  exit_waiters_.push_back(std::move(h));
  if (request && !stopping_) {
    stopping_ = true;
    wake();
  }
}

// --------------------------------------------------------------- nested ----

namespace {
/// A nested supervisor's life as its parent sees it: the run, then the
/// device's disconnect with the way it ended.
asio::awaitable<void> nested_life(std::shared_ptr<supervisor_impl> impl, device* home) {
  std::exception_ptr failed;
  try {
    co_await impl->run(impl);
  } catch (...) {
    failed = std::current_exception();
  }
  if (failed) {
    impl->crashed(failed);           // hands the device back
    std::rethrow_exception(failed);  // run_finished: fault::error, with this cause
  }
  supervisor_exit const e = impl->exit();
  // run_finished disconnects with fault::error and the parent reports this.
  if (e.intensity_exceeded) throw restart_intensity_exceeded(impl->give_up_text());
  if (e.fault && home->valid()) home->disconnect(*e.fault);
}
}  // namespace

start_result start_nested(supervisor_spec const& spec, child_context& ctx) {
  auto const* parent = static_cast<supervisor_spec const*>(ctx.parent_options);
  auto impl =
      std::make_shared<supervisor_impl>(ctx.executor, spec, ctx.supervisor + "/" + ctx.id, parent);
  // Before its children link to it.
  impl->adopt_device(std::move(ctx.device), nullptr);
  auto failure = impl->start_declared();
  if (failure) {
    // It runs on to stop what it started, then disconnects the device, which
    // the parent has unlinked by then.
    asio::co_spawn(impl->executor(), impl->run(impl), [impl](std::exception_ptr e) {
      if (e) impl->crashed(e);
    });
    return start_error{fmt::format("failed_to_start_child {}: {}", failure->id, failure->reason)};
  }
  impl->set_home(&ctx.device);
  // Runs on the nested supervisor's executor (the child's).
  if (ctx.on_kill) *ctx.on_kill = nested_hook{impl};
  impl->started();
  return nested_life(std::move(impl), &ctx.device);
}

}  // namespace backplane::detail
