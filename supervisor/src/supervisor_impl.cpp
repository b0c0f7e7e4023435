#include "supervisor_impl.hpp"

#include <backplane/describe.hpp>
#include <backplane/format.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

namespace asio = boost::asio;

namespace backplane::detail {

namespace {

using std::chrono::nanoseconds;

std::shared_ptr<spdlog::logger> default_logger() {
  if (auto l = spdlog::get("backplane")) return l;
  try {
    return spdlog::stderr_color_mt("backplane");
  } catch (spdlog::spdlog_ex const&) {
    return spdlog::get("backplane");  // another thread registered it first
  }
}

std::string millis(nanoseconds d) {
  return fmt::format("{}ms", std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

/// What a start function is handed, kept at a stable address for as long as
/// the child's run may refer to it (a coroutine keeps references).
struct child_cell {
  child_cell(device d, std::string path, std::string id, std::uint64_t incarnation,
             asio::any_io_executor ex, void const* parent)
      : dev(std::move(d)),
        path(std::move(path)),
        id(std::move(id)),
        ctx{dev, this->path, this->id, incarnation, std::move(ex), parent} {}
  device dev;
  std::string path;
  std::string id;
  child_context ctx;
};

/// The child's whole life, as seen from its own executor.
asio::awaitable<void> child_body(std::unique_ptr<child_cell> cell, asio::awaitable<void> run,
                                 std::shared_ptr<child_run_state> st) {
  std::exception_ptr thrown;
  try {
    co_await std::move(run);
  } catch (...) {
    thrown = std::current_exception();
  }
  // Written before the disconnect: the supervisor reads it after hearing.
  st->exception = thrown;
  st->finished = true;
  if (cell->dev.valid())
    cell->dev.disconnect(thrown ? std::optional<fault>(fault::error()) : std::nullopt);
}

}  // namespace

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
  }
  clock_ = spec_.clock ? spec_.clock : steady_supervisor_clock();
  logger_ = spec_.logger ? spec_.logger : default_logger();
  spec_.clock = clock_;
  spec_.logger = logger_;
  id_ = dev_.id();
  line_ = dev_.line();
  for (auto& c : spec_.children) {
    auto r = std::make_unique<child_record>();
    r->spec = c;
    by_id_[r->spec.id] = r.get();
    children_.push_back(std::move(r));
  }
}


// ---------------------------------------------------------------- start ----

std::optional<start_failure> supervisor_impl::start_declared() {
  id_ = dev_.id();
  line_ = dev_.line();
  for (auto& r : children_) {
    std::string failure;
    if (!start_incarnation(*r, &failure)) {
      stopping_ = true;
      exit_.fault = fault::error();
      return start_failure{r->spec.id, failure};
    }
  }
  return std::nullopt;
}

bool supervisor_impl::start_incarnation(child_record& r, std::string* failure) {
  ++r.incarnation;
  device d;
  dev_.link(d, link_mode::peer);
  backplane::line l = d.line();
  auto st = std::make_shared<child_run_state>();
  asio::any_io_executor cex = spec_.child_strands ? asio::any_io_executor(asio::make_strand(ex_)) : ex_;
  auto cell = std::make_unique<child_cell>(std::move(d), path_, r.spec.id, r.incarnation, cex,
                                           &spec_);
  std::string why;
  std::optional<asio::awaitable<void>> run;
  try {
    start_result res = r.spec.start(cell->ctx);
    if (res.ok()) {
      run.emplace(res.take_run());
    } else {
      why = res.error().reason.empty() ? "start_error" : res.error().reason;
    }
  } catch (...) {
    why = "exception: " + describe(std::current_exception());
  }
  if (!run) {
    // Forget it before it drops, and remember its id in case the drop was
    // already on its way (a start function that moved the device away).
    dev_.unlink_line(l, link_mode::peer);
    retired_.insert(l.id());
    r.status = child_status::stopped;
    report(supervisor_event_kind::start_error, &r, why, "", l.id());
    if (failure) *failure = why;
    return false;
  }
  r.ln = l;
  r.dev = l.id();
  r.status = child_status::running;
  r.run = st;
  r.ex = cex;
  by_device_[r.dev] = &r;
  asio::co_spawn(cex, child_body(std::move(cell), std::move(*run), st),
                 asio::bind_cancellation_slot(st->cancel.slot(), asio::detached));
  return true;
}

// ------------------------------------------------------------- mailbox ----

asio::awaitable<std::tuple<boost::system::error_code, message>> supervisor_impl::receive() {
  return dev_.async_receive(
      asio::bind_cancellation_slot(wake_.slot(), asio::as_tuple(asio::use_awaitable)));
}

void supervisor_impl::wake() { wake_.emit(asio::cancellation_type::total); }

void supervisor_impl::enqueue(job j) {
  jobs_.push_back(std::move(j));
  wake();
}

void supervisor_impl::note(message const& m, child_record const* target) {
  if (auto const* gone = as_disconnected(m)) {
    auto it = by_device_.find(gone->sender);
    if (it == by_device_.end()) {
      if (retired_.erase(gone->sender)) return;
      // Not a child: a device we are linked to (our parent) went away.
      if (gone->fault && !stopping_) {
        stopping_ = true;
        exit_.fault = fault::cascade(gone->sender);
      }
      return;
    }
    child_record* r = it->second;
    by_device_.erase(it);
    r->status = child_status::stopped;
    std::string reason = exit_reason(*r, gone->fault);
    r->run.reset();
    if (r != target) exits_.push_back(exit_note{r->spec.id, r->incarnation, gone->fault, reason});
    return;
  }
  if (as_shutdown(m)) stopping_ = true;
}

asio::awaitable<void> supervisor_impl::drain() {
  for (;;) {
    if (!exits_.empty()) {
      exit_note n = std::move(exits_.front());
      exits_.pop_front();
      co_await decide(std::move(n));
    } else if (!jobs_.empty() && !stopping_) {
      job j = std::move(jobs_.front());
      jobs_.pop_front();
      co_await j();
    } else {
      co_return;
    }
  }
}

asio::awaitable<void> supervisor_impl::run() {
  // The coroutine owns the supervisor: a member coroutine would only keep `this`.
  return loop(shared_from_this());
}

asio::awaitable<void> supervisor_impl::loop(std::shared_ptr<supervisor_impl> self) {
  while (!self->stopping_) {
    co_await self->drain();
    if (self->stopping_) break;
    self->idle_ = true;
    auto [ec, m] = co_await self->receive();
    self->idle_ = false;
    if (!ec) self->note(m, nullptr);
  }
  co_await self->stop_all();
  self->finish();
}

// ------------------------------------------------------------ stopping ----

void supervisor_impl::kill(child_record& r) {
  if (!r.run) return;
  asio::dispatch(r.ex, [st = r.run] {
    if (!st->finished) {
      st->killed = true;
      st->cancel.emit(asio::cancellation_type::terminal);
    }
  });
}

void supervisor_impl::abandon(child_record& r) {
  dev_.unlink_line(r.ln, link_mode::peer);
  by_device_.erase(r.dev);
  r.status = child_status::stopped;
  r.run.reset();
}

asio::awaitable<bool> supervisor_impl::await_exit(
    child_record& r, std::optional<supervisor_clock::time_point> deadline) {
  auto fired = std::make_shared<bool>(false);
  std::unique_ptr<supervisor_clock::timer> timer;
  if (deadline) {
    std::weak_ptr<supervisor_impl> weak = weak_from_this();
    timer = clock_->schedule(*deadline, ex_, [weak, fired] {
      *fired = true;
      if (auto self = weak.lock()) self->wake();
    });
  }
  device_id const target = r.dev;
  while (r.status == child_status::running && r.dev == target) {
    if (*fired) co_return false;
    auto [ec, m] = co_await receive();
    if (!ec) note(m, &r);
  }
  co_return true;
}

asio::awaitable<void> supervisor_impl::stop_child(child_record& r) {
  r.restart_timer.reset();
  ++r.restart_seq;
  if (r.status != child_status::running) {
    r.status = child_status::stopped;
    co_return;
  }
  shutdown_policy const pol = r.spec.shutdown;
  // A child that ignores cancellation too is given this long before it is
  // abandoned (unlinked and reported): the supervisor never hangs on it.
  nanoseconds const grace = pol.is_timeout() && pol.time() > nanoseconds::zero()
                                ? pol.time()
                                : nanoseconds(std::chrono::seconds(5));
  device_id const dev = r.dev;
  if (pol.is_brutal()) {
    kill(r);
  } else {
    (void)r.ln.request_shutdown(id_);
  }
  std::optional<supervisor_clock::time_point> deadline;
  if (pol.is_timeout()) deadline = clock_->now() + pol.time();
  if (pol.is_brutal()) deadline = clock_->now() + grace;
  if (co_await await_exit(r, deadline)) co_return;
  if (!pol.is_brutal()) {
    report(supervisor_event_kind::shutdown_error, &r,
           fmt::format("did not stop within {} of the shutdown request", millis(pol.time())),
           "cancel", dev);
    kill(r);
    if (co_await await_exit(r, clock_->now() + grace)) co_return;
  }
  report(supervisor_event_kind::shutdown_error, &r,
         fmt::format("ignored cancellation for {}", millis(grace)), "abandon", dev);
  abandon(r);
}

asio::awaitable<void> supervisor_impl::stop_all() {
  for (auto it = children_.rbegin(); it != children_.rend(); ++it) {
    child_record& r = **it;
    co_await stop_child(r);
  }
}

void supervisor_impl::remove(child_record* r) {
  if (r->status == child_status::running) by_device_.erase(r->dev);
  by_id_.erase(r->spec.id);
  auto it = std::find_if(children_.begin(), children_.end(),
                         [r](auto const& p) { return p.get() == r; });
  if (it != children_.end()) children_.erase(it);
}

child_record* supervisor_impl::find(std::string const& id) {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

// ------------------------------------------------------------ decisions ----

std::string supervisor_impl::exit_reason(child_record const& r, std::optional<fault> f) const {
  if (!f) return "clean";
  switch (f->what()) {
    case fault::kind::drop: return "drop: the child's device was destroyed while connected";
    case fault::kind::cascade: return "cascade from " + to_string(f->origin());
    case fault::kind::error: break;
  }
  if (r.run && r.run->killed) return "killed: cancelled by the supervisor";
  if (r.run && r.run->exception) return "error: " + describe(r.run->exception);
  return "error";
}

bool supervisor_impl::count_restart(child_record* r, std::string const& reason) {
  if (!window_.add(clock_->now())) return true;
  report(supervisor_event_kind::intensity_exceeded, r, reason,
         "stop all children and give up", r ? r->dev : device_id{});
  stopping_ = true;
  exit_.intensity_exceeded = true;
  exit_.fault = fault::error();
  return false;
}

asio::awaitable<void> supervisor_impl::decide(exit_note n) {
  child_record* r = find(n.id);
  if (!r || r->incarnation != n.incarnation || r->status != child_status::stopped) co_return;
  if (stopping_) {
    report(supervisor_event_kind::child_terminated, r, n.reason, "none (supervisor stopping)");
    co_return;
  }
  bool const should_restart = r->spec.restart == restart_type::permanent ||
                       (r->spec.restart == restart_type::transient && n.f.has_value());
  if (!should_restart) {
    bool const temporary = r->spec.restart == restart_type::temporary;
    report(supervisor_event_kind::child_terminated, r, n.reason,
           temporary ? "none (temporary: spec removed)" : "none (transient, exited cleanly)");
    if (temporary) remove(r);
    co_return;
  }
  // Counted first, so the report shows the restart it asks for.
  bool const within = !window_.add(clock_->now());
  report(supervisor_event_kind::child_terminated, r, n.reason,
         within ? "restart" : "give up: restart intensity exceeded");
  if (!within) {
    report(supervisor_event_kind::intensity_exceeded, r, n.reason,
           "stop all children and terminate with a fault");
    stopping_ = true;
    exit_.intensity_exceeded = true;
    exit_.fault = fault::error();
    co_return;
  }
  co_await restart(r, true);
}

std::vector<child_record*> supervisor_impl::group_of(child_record* failed) {
  std::vector<child_record*> group;
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

supervisor_clock::duration supervisor_impl::backoff_delay(child_record& r) {
  if (!r.spec.backoff) return supervisor_clock::duration::zero();
  auto const& b = *r.spec.backoff;
  auto now = clock_->now();
  if (r.consecutive > 0 && now - r.last_restart >= b.reset_after) r.consecutive = 0;
  double base = static_cast<double>(b.initial.count()) *
                std::pow(b.multiplier, static_cast<double>(r.consecutive));
  base = std::min(base, static_cast<double>(b.max.count()));
  double factor = 1.0;
  if (b.jitter > 0) {
    std::uniform_real_distribution<double> dist(1.0 - b.jitter, 1.0 + b.jitter);
    factor = dist(rng_);
  }
  ++r.consecutive;
  r.last_restart = now;
  return nanoseconds(static_cast<std::int64_t>(base * factor));
}

void supervisor_impl::schedule_restart(child_record* failed, supervisor_clock::duration delay) {
  failed->status = child_status::restarting;
  std::uint64_t seq = ++failed->restart_seq;
  std::string id = failed->spec.id;
  std::weak_ptr<supervisor_impl> weak = weak_from_this();
  auto fire = [weak, id, seq] {
    auto self = weak.lock();
    if (!self) return;
    self->enqueue([self, id, seq]() -> asio::awaitable<void> {
      child_record* r = self->find(id);
      if (!r || r->restart_seq != seq || r->status != child_status::restarting) co_return;
      co_await self->restart(r, false);
    });
  };
  if (delay > supervisor_clock::duration::zero()) {
    failed->restart_timer = clock_->schedule(clock_->now() + delay, ex_, std::move(fire));
  } else {
    // A retry goes behind whatever is already waiting (OTP's try_again_restart
    // message), so the supervisor keeps answering while a start keeps failing.
    asio::post(ex_, std::move(fire));
  }
}

asio::awaitable<void> supervisor_impl::restart(child_record* failed, bool counted) {
  if (!counted && !count_restart(failed, "restart retry")) co_return;
  std::vector<child_record*> group = group_of(failed);
  // Stop the rest of the group, last started first.
  for (auto it = group.rbegin(); it != group.rend(); ++it) {
    child_record* c = *it;
    if (c != failed && c->status != child_status::stopped) co_await stop_child(*c);
    if (stopping_) co_return;
  }
  // Temporary children stopped as a side effect are dropped, not restarted.
  std::vector<child_record*> to_start;
  for (child_record* c : group) {
    if (c != failed && c->spec.restart == restart_type::temporary) {
      remove(c);
    } else {
      to_start.push_back(c);
    }
  }
  if (failed->status == child_status::restarting && failed->restart_timer) co_return;
  auto delay = backoff_delay(*failed);
  if (delay > supervisor_clock::duration::zero() && counted) {
    for (child_record* c : to_start) c->status = child_status::restarting;
    schedule_restart(failed, delay);
    co_return;
  }
  std::vector<child_record*> started;
  for (child_record* c : to_start) {
    std::string why;
    if (start_incarnation(*c, &why)) {
      report(supervisor_event_kind::restarted, c, "", "running", c->dev);
      started.push_back(c);
      continue;
    }
    // Part-way failure: undo this round, retry later (each try counts).
    for (auto it = started.rbegin(); it != started.rend(); ++it) co_await stop_child(**it);
    for (child_record* s : to_start) s->status = child_status::restarting;
    failed->status = child_status::restarting;
    schedule_restart(failed, supervisor_clock::duration::zero());
    co_return;
  }
}

// -------------------------------------------------------------- reports ----

void supervisor_impl::report(supervisor_event_kind kind, child_record const* r, std::string reason,
                             std::string action, device_id dev) {
  supervisor_event e;
  e.supervisor = path_;
  if (r) {
    e.child = r->spec.id;
    e.incarnation = r->incarnation;
    e.device = dev ? dev : r->dev;
  }
  e.event = kind;
  e.reason = std::move(reason);
  e.restarts = window_.in_window(clock_->now());
  e.max_restarts = window_.max_restarts();
  e.period = window_.period();
  e.action = std::move(action);
  if (spec_.observer) spec_.observer(e);
  spdlog::level::level_enum level = spdlog::level::err;
  switch (kind) {
    case supervisor_event_kind::child_terminated:
      level = e.reason == "clean" ? spdlog::level::debug : spdlog::level::err;
      break;
    case supervisor_event_kind::restarted: level = spdlog::level::info; break;
    case supervisor_event_kind::shutdown_error: level = spdlog::level::warn; break;
    case supervisor_event_kind::intensity_exceeded: level = spdlog::level::critical; break;
    case supervisor_event_kind::start_error: level = spdlog::level::err; break;
  }
  if (logger_->should_log(level)) {
    logger_->log(level, "{}", spec_.format == report_format::json ? format_json(e) : format_text(e));
  }
}

void supervisor_impl::finish() {
  ended_ = true;
  if (dev_.valid()) dev_.disconnect(exit_.fault);
  auto waiters = std::move(exit_waiters_);
  for (auto& h : waiters) {
    asio::post(ex_, asio::append(std::move(h), boost::system::error_code{}, exit_));
  }
}

// ------------------------------------------------------------------ API ----

namespace {
template <class H, class... Args>
void complete(H h, asio::any_io_executor const& fallback, Args... args) {
  // Posted to the supervisor's executor, then dispatched to the handler's own.
  asio::post(fallback, asio::append(std::move(h), std::move(args)...));
}
boost::system::error_code err(supervisor_errc e) { return make_error_code(e); }
}  // namespace

void supervisor_impl::api_start_child(child_spec spec, handler_t<device_id> h) {
  if (ended_ || stopping_) return complete(std::move(h), ex_, err(supervisor_errc::supervisor_down), device_id{});
  auto run_now = [this, spec = std::move(spec), h = std::move(h)]() mutable {
    if (ended_ || stopping_) return complete(std::move(h), ex_, err(supervisor_errc::supervisor_down), device_id{});
    if (child_record* r = find(spec.id)) {
      return complete(std::move(h), ex_,
                      err(r->status == child_status::stopped ? supervisor_errc::already_present
                                                             : supervisor_errc::running),
                      r->dev);
    }
    auto rec = std::make_unique<child_record>();
    rec->spec = std::move(spec);
    child_record* r = rec.get();
    by_id_[r->spec.id] = r;
    children_.push_back(std::move(rec));
    if (!start_incarnation(*r, nullptr)) {
      remove(r);  // OTP: a failed dynamic start discards the spec
      return complete(std::move(h), ex_, err(supervisor_errc::start_failed), device_id{});
    }
    complete(std::move(h), ex_, boost::system::error_code{}, r->dev);
  };
  if (idle_ && jobs_.empty()) {
    run_now();  // parked at the top: nothing holds a child pointer
  } else {
    auto shared = std::make_shared<decltype(run_now)>(std::move(run_now));
    enqueue([shared]() -> asio::awaitable<void> {
      (*shared)();
      co_return;
    });
  }
}

void supervisor_impl::api_terminate_child(std::string id, void_handler_t h) {
  auto self = shared_from_this();
  auto shared_h = std::make_shared<void_handler_t>(std::move(h));
  enqueue([self, id = std::move(id), shared_h]() -> asio::awaitable<void> {
    child_record* r = self->find(id);
    if (!r) {
      complete(std::move(*shared_h), self->ex_, err(supervisor_errc::not_found));
      co_return;
    }
    co_await self->stop_child(*r);
    if (r->spec.restart == restart_type::temporary) self->remove(r);
    complete(std::move(*shared_h), self->ex_, boost::system::error_code{});
  });
}

void supervisor_impl::api_restart_child(std::string id, handler_t<device_id> h) {
  auto self = shared_from_this();
  auto shared_h = std::make_shared<handler_t<device_id>>(std::move(h));
  enqueue([self, id = std::move(id), shared_h]() -> asio::awaitable<void> {
    child_record* r = self->find(id);
    boost::system::error_code ec;
    if (!r) {
      ec = err(supervisor_errc::not_found);
    } else if (r->status == child_status::running) {
      ec = err(supervisor_errc::running);
    } else if (r->status == child_status::restarting) {
      ec = err(supervisor_errc::restarting);
    } else if (!self->start_incarnation(*r, nullptr)) {
      ec = err(supervisor_errc::start_failed);  // OTP: the spec is kept
    }
    complete(std::move(*shared_h), self->ex_, ec, ec ? device_id{} : r->dev);
    co_return;
  });
}

void supervisor_impl::api_delete_child(std::string id, void_handler_t h) {
  auto self = shared_from_this();
  auto shared_h = std::make_shared<void_handler_t>(std::move(h));
  enqueue([self, id = std::move(id), shared_h]() -> asio::awaitable<void> {
    child_record* r = self->find(id);
    boost::system::error_code ec;
    if (!r) {
      ec = err(supervisor_errc::not_found);
    } else if (r->status == child_status::running) {
      ec = err(supervisor_errc::running);
    } else if (r->status == child_status::restarting) {
      ec = err(supervisor_errc::restarting);
    } else {
      self->remove(r);
    }
    complete(std::move(*shared_h), self->ex_, ec);
    co_return;
  });
}

void supervisor_impl::api_which_children(handler_t<std::vector<child_info>> h) {
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
  complete(std::move(h), ex_, boost::system::error_code{}, std::move(out));
}

void supervisor_impl::api_count_children(handler_t<child_counts> h) {
  child_counts n;
  n.specs = children_.size();
  for (auto const& c : children_) {
    if (c->status == child_status::running) ++n.active;
    if (c->spec.kind == child_kind::supervisor) ++n.supervisors;
    else ++n.workers;
  }
  complete(std::move(h), ex_, boost::system::error_code{}, n);
}

void supervisor_impl::api_budget(handler_t<restart_budget> h) {
  auto now = clock_->now();
  restart_budget b;
  b.restarts_in_window = window_.in_window(now);
  b.max_restarts = window_.max_restarts();
  b.period = window_.period();
  b.until_oldest_expires = window_.until_oldest_expires(now);
  complete(std::move(h), ex_, boost::system::error_code{}, b);
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

start_result start_nested(supervisor_spec const& spec, child_context& ctx) {
  auto const* parent = static_cast<supervisor_spec const*>(ctx.parent_options);
  auto impl = std::make_shared<supervisor_impl>(ctx.executor, spec, ctx.supervisor + "/" + ctx.id,
                                                parent);
  impl->adopt_device(std::move(ctx.device));
  auto failure = impl->start_declared();
  // Either way the supervisor runs: to supervise, or to stop what it started.
  auto run = impl->run();
  if (failure) {
    asio::co_spawn(impl->executor(), std::move(run), asio::detached);
    return start_error{fmt::format("failed_to_start_child {}: {}", failure->id, failure->reason)};
  }
  return run;
}

}  // namespace backplane::detail
