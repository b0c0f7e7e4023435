#include "dynamic_supervisor_impl.hpp"

#include "reasons.hpp"
#include "report_delivery.hpp"
#include "stop_grace.hpp"

#include <backplane/format.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace asio = boost::asio;

namespace backplane::detail {

namespace {

using std::chrono::nanoseconds;

std::string duration_text(nanoseconds d) { return readable(d); }

spdlog::level::level_enum level_of(supervisor_event_kind kind, bool clean) {
  return report_level(kind, clean ? reason_kind::clean : reason_kind::none);
}

/// A child's own strand beside the supervisor's, as the supervisor makes them.
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

boost::system::error_code err(supervisor_errc e) { return make_error_code(e); }

/// Posted to `ex`: never run inside the supervisor's own decision.
template <class H, class... Args>
void complete(H h, asio::any_io_executor const& ex, Args... args) {
  asio::post(ex, [h = std::move(h), args...]() mutable { std::move(h)(std::move(args)...); });
}

}  // namespace

dynamic_supervisor_impl::dynamic_supervisor_impl(asio::any_io_executor ex,
                                                 dynamic_supervisor_spec spec, std::string path,
                                                 supervisor_spec const* parent)
    : ex_(std::move(ex)),
      spec_(std::move(spec)),
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
  json_ = spec_.format.value_or(report_format::text) == report_format::json;
  child_strands_ = spec_.child_strands.value_or(true);
  options_.clock = clock_;
  options_.logger = logger_;
  options_.format = json_ ? report_format::json : report_format::text;
  options_.observer = spec_.observer;
  options_.child_strands = child_strands_;
  shared_ = std::make_shared<incarnation_shared const>(
      incarnation_shared{std::move(path), spec_.child_name});
  id_ = dev_.id();
  line_ = dev_.line();
}

void dynamic_supervisor_impl::adopt_device(device d) {
  dev_ = std::move(d);
  id_ = dev_.id();
  line_ = dev_.line();
  nested_ = true;
}

// ------------------------------------------------------------------ run ----

asio::awaitable<void> dynamic_supervisor_impl::run(std::shared_ptr<dynamic_supervisor_impl> self) {
  // Destroyed with the frame, also when the context is destroyed first.
  struct drop_hooks {
    dynamic_supervisor_impl* impl;
    ~drop_hooks() {
      impl->on_give_up = nullptr;
      impl->on_stop = nullptr;
      impl->on_end = nullptr;
    }
  } const hooks{self.get()};
  while (!ended_) {
    auto [ec, m] = co_await dev_.async_receive(
        asio::bind_cancellation_slot(wake_.slot(), asio::as_tuple(asio::use_awaitable)));
    if (ec) continue;  // woken: the loop's condition says whether we ended
    on_message(m);
  }
}

void dynamic_supervisor_impl::on_message(message const& m) {
  if (auto const* gone = as_disconnected(m)) {
    dynamic_child* c = by_device_.find(gone->sender);
    if (!c || c->status != child_status::running) {
      if (retired_.erase(gone->sender)) return;
      // Not a child: a device that we monitor (our parent) went away. Its
      // fault is ours; a clean exit is forgotten.
      if (gone->fault && !stopping_) {
        exit_.fault = fault::cascade(gone->sender);
        begin_stop();
      }
      return;
    }
    on_exit(*c, *gone);
    return;
  }
  if (as_shutdown(m)) begin_stop();
}

namespace {
event_reason exit_reason_of(child_incarnation const* run, disconnected const& gone) {
  static std::optional<event_reason> const none;
  if (!run) return exit_reason(gone, false, none);
  bool const killed = run->killed.load(std::memory_order_relaxed) &&
                      !own_fault_after_kill(gone, run->on_kill != nullptr);
  return exit_reason(gone, killed, run->returned);
}
}  // namespace

void dynamic_supervisor_impl::on_exit(dynamic_child& c, disconnected const& gone) {
  bool const killed = c.run && c.run->killed.load(std::memory_order_relaxed) &&
                      !own_fault_after_kill(gone, c.run->on_kill != nullptr);
  event_reason reason = spec_.observer || logger_->should_log(spdlog::level::critical)
                            ? exit_reason_of(c.run.get(), gone)
                            : event_reason{};
  c.run.reset();
  c.timer.reset();
  c.status = child_status::stopped;
  if (c.stopping || stopping_) {
    if (c.stopping) {
      // OTP reports a child that, asked to stop, ended with a fault of its own.
      if (gone.fault && !killed)
        report(supervisor_event_kind::shutdown_error, c, reason, supervisor_action::none);
    } else if (heard(supervisor_event_kind::child_terminated, !gone.fault)) {
      report(supervisor_event_kind::child_terminated, c, reason, supervisor_action::none,
             std::nullopt, "supervisor stopping");
    }
    remove(c);
    maybe_finish();
    return;
  }
  restart_type const rt = spec_.restart;
  bool const should_restart =
      rt == restart_type::permanent || (rt == restart_type::transient && gone.fault.has_value());
  if (!should_restart) {
    if (heard(supervisor_event_kind::child_terminated, !gone.fault)) {
      report(
          supervisor_event_kind::child_terminated, c, reason, supervisor_action::none, std::nullopt,
          rt == restart_type::temporary ? "temporary: child removed" : "transient, exited cleanly");
    }
    remove(c);
    return;
  }
  if (window_.add(clock_->now())) {
    report(supervisor_event_kind::child_terminated, c, reason, supervisor_action::give_up);
    device_id const dev = c.dev;
    std::uint64_t const inc = c.incarnation;
    remove(c);
    give_up(dev, inc, reason);
    return;
  }
  auto const delay = backoff_delay(c);
  if (heard(supervisor_event_kind::child_terminated)) {
    report(supervisor_event_kind::child_terminated, c, reason, supervisor_action::restart,
           delay > nanoseconds::zero() ? std::optional(delay) : std::nullopt);
  }
  c.status = child_status::restarting;
  if (delay > nanoseconds::zero()) {
    schedule_restart(c, delay);
  } else {
    restart(c);
  }
}

// ------------------------------------------------------------- children ----

bool dynamic_supervisor_impl::start_incarnation(dynamic_child& c, event_reason& why) {
  ++c.incarnation;
  if (child_strands_ && !c.strand)
    c.strand = std::make_unique<asio::any_io_executor>(child_executor(ex_));
  auto run = std::make_shared<child_incarnation>(shared_, c.incarnation,
                                                 child_strands_ ? *c.strand : ex_, &options_);
  run->describe_errors = spec_.observer || logger_->should_log(spdlog::level::critical);
  dev_.link(run->dev, link_mode::peer);
  backplane::line l = run->dev.line();
  std::optional<start_result> res;
  try {
    starting_scope const scope(run);
    res.emplace(c.start(run->ctx));
    if (!res->ok()) {
      why = start_error_reason(res->error().reason);
      res.reset();
    } else if (res->ignored()) {
      // A dynamic supervisor keeps no spec to show as not running (OTP's
      // simple_one_for_one keeps an undefined pid that nothing can restart).
      why = start_error_reason(
          "start_result::ignore() is not supported by a dynamic_supervisor (it keeps no spec for "
          "a child that does not run): return a start_error, or start the child only when it "
          "has work");
      res.reset();
    }
  } catch (...) {
    why = exception_reason(std::current_exception());
    res.reset();
  }
  if (!res) {
    retire(l);  // its device drops with `run`, unheard
    return false;
  }
  try {
    child_incarnation::launch(run, *res);
  } catch (...) {
    // Asio could not start the child's coroutine (std::bad_alloc): a failed
    // start like any other. Nothing of it runs.
    why = exception_reason(std::current_exception());
    retire(l);
    return false;
  }
  if (c.dev) by_device_.erase(c.dev);
  c.dev = l.id();
  c.ln = std::move(l);
  c.status = child_status::running;
  c.run = run;
  if (spec_.backoff) c.backoff.started(clock_->now());
  by_device_.insert(c.dev, &c);
  return true;
}

void dynamic_supervisor_impl::restart(dynamic_child& c) {
  event_reason why;
  if (start_incarnation(c, why)) {
    if (heard(supervisor_event_kind::restarted))
      report(supervisor_event_kind::restarted, c, {}, supervisor_action::none);
    return;
  }
  // A failed restart counts toward intensity like any restart (OTP).
  if (window_.add(clock_->now())) {
    report(supervisor_event_kind::start_error, device_id{}, c.incarnation, why,
           supervisor_action::give_up);
    std::uint64_t const inc = c.incarnation;
    remove(c);
    give_up(device_id{}, inc, why);
    return;
  }
  auto const delay = backoff_delay(c);
  report(supervisor_event_kind::start_error, device_id{}, c.incarnation, why,
         supervisor_action::retry,
         delay > nanoseconds::zero() ? std::optional(delay) : std::nullopt);
  schedule_restart(c, delay);
}

void dynamic_supervisor_impl::schedule_restart(dynamic_child& c, supervisor_clock::duration delay) {
  c.status = child_status::restarting;
  std::uint64_t const seq = ++c.restart_seq;
  device_id const dev = c.dev;
  std::weak_ptr<dynamic_supervisor_impl> weak = weak_from_this();
  auto fire = [weak, dev, seq] {
    auto self = weak.lock();
    if (!self || self->stopping_) return;
    // Found again by its last device: it may have been terminated meanwhile.
    dynamic_child* r = self->by_device_.find(dev);
    if (!r || r->restart_seq != seq || r->status != child_status::restarting) return;
    r->timer.reset();
    self->restart(*r);
  };
  if (delay > supervisor_clock::duration::zero()) {
    c.timer = clock_->schedule(clock_->now() + delay, ex_, std::move(fire));
  } else {
    // Behind whatever waits already, so the supervisor keeps answering
    // while a start keeps failing (OTP's try_again_restart).
    asio::post(ex_, std::move(fire));
  }
}

supervisor_clock::duration dynamic_supervisor_impl::backoff_delay(dynamic_child& c) {
  if (!spec_.backoff) return supervisor_clock::duration::zero();
  return c.backoff.next(*spec_.backoff, clock_->now(), rng_);
}

void dynamic_supervisor_impl::kill(dynamic_child& c) {
  if (c.run) child_incarnation::kill(c.run);
}

void dynamic_supervisor_impl::stop_one(dynamic_child& c) {
  if (c.status != child_status::running) {
    // Waiting for a restart: nothing runs, so it is gone at once.
    remove(c);
    maybe_finish();
    return;
  }
  if (c.stopping) {
    if (killed_) cancel_stopping(c);
    return;
  }
  c.stopping = true;
  shutdown_policy const pol = spec_.shutdown;
  if (pol.is_brutal() || killed_) {
    cancel_stopping(c);
    return;
  }
  (void)c.ln.request_shutdown(id_);
  if (!pol.is_timeout()) return;
  std::weak_ptr<dynamic_supervisor_impl> weak = weak_from_this();
  device_id const dev = c.dev;
  c.timer = clock_->schedule(clock_->now() + pol.time(), ex_, [weak, dev, t = pol.time()] {
    auto self = weak.lock();
    if (!self) return;
    dynamic_child* r = self->by_device_.find(dev);
    if (!r || r->dev != dev || r->status != child_status::running || !r->stopping) return;
    self->report(supervisor_event_kind::shutdown_error, *r,
                 message_reason(reason_kind::shutdown_timeout,
                                fmt::format("did not stop within {} of the shutdown request",
                                            duration_text(t))),
                 supervisor_action::cancel);
    self->cancel_stopping(*r);
  });
}

void dynamic_supervisor_impl::cancel_stopping(dynamic_child& c) {
  kill(c);
  // A child that ignores the cancellation too is abandoned after a grace
  // period (the static supervisor's rule), so neither this stop nor the
  // supervisor's own ever hangs on it; `infinity` waits, as it says.
  if (c.grace || spec_.shutdown.is_infinity()) return;
  std::weak_ptr<dynamic_supervisor_impl> weak = weak_from_this();
  device_id const dev = c.dev;
  auto const grace = abandon_grace(spec_.shutdown);
  c.grace = clock_->schedule(clock_->now() + grace, ex_, [weak, dev, grace] {
    auto self = weak.lock();
    if (!self) return;
    dynamic_child* r = self->by_device_.find(dev);
    if (!r || r->dev != dev || r->status != child_status::running || !r->stopping) return;
    self->report(supervisor_event_kind::shutdown_error, *r,
                 message_reason(reason_kind::kill_timeout,
                                fmt::format("ignored cancellation for {}", duration_text(grace))),
                 supervisor_action::abandon);
    self->exit_.abandoned.push_back(to_string(dev));
    // Unlinked, its end can no longer reach us; its incarnation's frames stay
    // with its coroutine, which the context frees when it is destroyed.
    self->retire(r->ln);
    self->remove(*r);
    self->maybe_finish();
  });
}

void dynamic_supervisor_impl::begin_stop() {
  if (stopping_) {
    if (killed_) {
      for (dynamic_child* c = first_; c; c = c->next) kill(*c);
    }
    return;
  }
  stopping_ = true;
  if (on_stop) on_stop();
  for (dynamic_child* c = first_; c;) {
    dynamic_child* next = c->next;
    stop_one(*c);
    c = next;
  }
  maybe_finish();
}

void dynamic_supervisor_impl::kill_all() {
  if (ended_) return;
  killed_ = true;
  if (!exit_.fault) exit_.fault = fault::error();
  begin_stop();
}

void dynamic_supervisor_impl::give_up(device_id dev, std::uint64_t incarnation,
                                      event_reason const& reason) {
  report(supervisor_event_kind::intensity_exceeded, dev, incarnation, reason,
         supervisor_action::terminate);
  exit_.intensity_exceeded = true;
  exit_.fault = fault::error();
  if (on_give_up) on_give_up();
  begin_stop();
}

std::string dynamic_supervisor_impl::give_up_text() const {
  return fmt::format("supervisor {} gave up: more than {} restarts in {}", path(),
                     window_.max_restarts(), duration_text(window_.period()));
}

void dynamic_supervisor_impl::retire(backplane::line const& l) {
  dev_.unlink_line(l, link_mode::peer);
  if (!l.connected()) retired_.insert(l.id());
}

void dynamic_supervisor_impl::remove(dynamic_child& c) {
  if (c.dev) by_device_.erase(c.dev);
  (c.prev ? c.prev->next : first_) = c.next;
  (c.next ? c.next->prev : last_) = c.prev;
  --size_;
  for (auto& h : c.stop_waiters) complete(std::move(h), ex_, boost::system::error_code{});
  delete &c;
}

void dynamic_supervisor_impl::maybe_finish() {
  if (stopping_ && size_ == 0 && !ended_) finish();
}

void dynamic_supervisor_impl::crashed(std::exception_ptr e) noexcept {
  if (ended_) return;
  ended_ = true;
  stopping_ = true;
  exit_.fault = fault::error();
  exit_.failed_reports = report_failures_;
  // A root's monitors hear the fault with its cause; a nested one's device
  // goes back to its parent's incarnation (nested_dynamic_life), which ends
  // with this exception. Its children hear their peer's fault.
  if (!nested_ && dev_.valid()) dev_.disconnect(fault::error(), e);
  wake_.emit(asio::cancellation_type::total);
  auto waiters = std::move(exit_waiters_);
  for (auto& h : waiters) {
    try {
      complete(std::move(h), ex_, boost::system::error_code{}, exit_);
    } catch (...) {
      // A waiter we cannot tell (std::bad_alloc posting its reply) is
      // destroyed unanswered: Asio's rule for a handler that will never run.
    }
  }
  auto fail = std::move(on_give_up);
  auto end = std::move(on_end);
  on_stop = nullptr;
  try {
    // A pool fails what it holds (pool_failed), as when its supervisor gives up.
    if (fail) fail();
    if (end) end();
  } catch (...) {
    // Nothing more can be done for them here; their handlers are destroyed.
  }
}

void dynamic_supervisor_impl::finish() {
  ended_ = true;
  exit_.failed_reports = report_failures_;
  if (!nested_ && dev_.valid()) {
    if (exit_.intensity_exceeded) {
      dev_.disconnect(*exit_.fault,
                      std::make_exception_ptr(restart_intensity_exceeded(give_up_text())));
    } else {
      dev_.disconnect(exit_.fault);
    }
  }
  wake_.emit(asio::cancellation_type::total);
  auto waiters = std::move(exit_waiters_);
  for (auto& h : waiters) complete(std::move(h), ex_, boost::system::error_code{}, exit_);
  auto end = std::move(on_end);
  on_give_up = nullptr;
  on_stop = nullptr;
  on_end = nullptr;
  if (end) end();
}

// -------------------------------------------------------------- reports ----

bool dynamic_supervisor_impl::heard(supervisor_event_kind kind, bool clean) const {
  return spec_.observer || logger_->should_log(level_of(kind, clean));
}

void dynamic_supervisor_impl::report(supervisor_event_kind kind, dynamic_child const& c,
                                     event_reason reason, supervisor_action action,
                                     std::optional<supervisor_clock::duration> delay,
                                     std::string_view note) {
  report(kind, c.dev, c.incarnation, std::move(reason), action, delay, note);
}

void dynamic_supervisor_impl::report(supervisor_event_kind kind, device_id dev,
                                     std::uint64_t incarnation, event_reason reason,
                                     supervisor_action action,
                                     std::optional<supervisor_clock::duration> delay,
                                     std::string_view note) {
  auto const level = report_level(kind, reason.kind);
  bool const log = logger_->should_log(level);
  if (!log && !spec_.observer) return;
  supervisor_event e;
  try {
    e.supervisor = path();
    e.child = spec_.child_name;
  } catch (...) {  // out of memory: the event goes without its strings
  }
  e.device = dev;
  e.incarnation = incarnation;
  e.event = kind;
  e.reason = std::move(reason);
  e.restarts = window_.in_window(clock_->now());
  e.max_restarts = window_.max_restarts();
  e.period = window_.period();
  e.action = action;
  e.delay = delay;
  e.note = note;
  deliver(e, level, log, json_, spec_.observer, *logger_, report_failures_);
}

// ------------------------------------------------------------------ API ----

void dynamic_supervisor_impl::api_start_child(start_function start, handler_t<device_id> h) {
  if (stopping_ || ended_)
    return complete(std::move(h), ex_, err(supervisor_errc::supervisor_down), device_id{});
  if (size_ >= spec_.max_children)
    return complete(std::move(h), ex_, make_error_code(pool_errc::max_children), device_id{});
  auto* c = new dynamic_child;
  c->start = std::move(start);
  c->prev = last_;
  (last_ ? last_->next : first_) = c;
  last_ = c;
  ++size_;
  event_reason why;
  if (!start_incarnation(*c, why)) {
    report(supervisor_event_kind::start_error, device_id{}, c->incarnation, why,
           supervisor_action::none, std::nullopt, "start_child: child discarded");
    remove(*c);
    return complete(std::move(h), ex_, err(supervisor_errc::start_failed), device_id{});
  }
  // We run in the handler the API posted: the reply may run at once.
  std::move(h)(boost::system::error_code{}, c->dev);
}

void dynamic_supervisor_impl::api_terminate_child(device_id dev, void_handler_t h) {
  if (stopping_ || ended_)
    return complete(std::move(h), ex_, err(supervisor_errc::supervisor_down));
  dynamic_child* c = by_device_.find(dev);
  if (!c) return complete(std::move(h), ex_, err(supervisor_errc::not_found));
  c->stop_waiters.push_back(std::move(h));
  stop_one(*c);
}

void dynamic_supervisor_impl::api_which_children(handler_t<std::vector<dynamic_child_info>> h) {
  if (ended_) {
    return std::move(h)(err(supervisor_errc::supervisor_down), std::vector<dynamic_child_info>{});
  }
  std::vector<dynamic_child_info> out;
  out.reserve(size_);
  for (dynamic_child const* c = first_; c; c = c->next)
    out.push_back(dynamic_child_info{c->dev, c->status, c->incarnation});
  std::move(h)(boost::system::error_code{}, std::move(out));
}

void dynamic_supervisor_impl::api_count_children(handler_t<child_counts> h) {
  if (ended_) return std::move(h)(err(supervisor_errc::supervisor_down), child_counts{});
  child_counts n;
  n.specs = size_;
  for (dynamic_child const* c = first_; c; c = c->next)
    if (c->status == child_status::running) ++n.active;
  (spec_.kind == child_kind::supervisor ? n.supervisors : n.workers) = size_;
  std::move(h)(boost::system::error_code{}, n);
}

void dynamic_supervisor_impl::api_stop(bool request, handler_t<supervisor_exit> h) {
  if (ended_) return complete(std::move(h), ex_, boost::system::error_code{}, exit_);
  exit_waiters_.push_back(std::move(h));
  if (request) begin_stop();
}

dynamic_supervisor_impl::~dynamic_supervisor_impl() {
  // Records left when the context was destroyed before the supervisor ended.
  for (dynamic_child* c = first_; c;) {
    dynamic_child* next = c->next;
    delete c;
    c = next;
  }
}

asio::awaitable<void> nested_dynamic_life(std::shared_ptr<dynamic_supervisor_impl> impl,
                                          device* home) {
  std::exception_ptr crash;
  try {
    co_await impl->run(impl);
  } catch (...) {
    crash = std::current_exception();
  }
  if (crash) {
    // Its own bookkeeping failed: the parent's incarnation gets the device
    // back and ends with fault::error and this cause, so the parent decides.
    impl->crashed(crash);
    *home = impl->take_device();
    std::rethrow_exception(crash);
  }
  *home = impl->take_device();
  supervisor_exit const e = impl->exit();
  if (e.intensity_exceeded) throw restart_intensity_exceeded(impl->give_up_text());
  if (e.fault && home->valid()) home->disconnect(*e.fault);
}

}  // namespace backplane::detail
