// service_runner: start, signals, stop deadline, systemd notifications, the exit status.

#include "service_runner.hpp"

#include "http_server.hpp"
#include "tree_state.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

#include <csignal>
#include <stdexcept>

namespace backplane::detail {

namespace asio = boost::asio;

namespace {

std::shared_ptr<spdlog::logger> pick_logger(service_options const& o, supervisor_spec const& s) {
  if (o.logger) return o.logger;
  if (s.logger) return s.logger;
  if (auto l = spdlog::get("backplane")) return l;
  // The same default as the supervisor's: a logger named "backplane" on stderr.
  auto l = spdlog::default_logger()->clone("backplane");
  spdlog::register_logger(l);
  return l;
}

char const* signal_name(int signo) {
  switch (signo) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
  }
  return "signal";
}

}  // namespace

service_runner::service_runner(asio::io_context& ctx, supervisor_spec root, service_options options,
                               handler_type handler)
    : ctx_(ctx),
      strand_(asio::make_strand(ctx)),
      root_ex_(asio::make_strand(ctx)),
      spec_(std::move(root)),
      options_(std::move(options)),
      handler_(std::move(handler)),
      logger_(pick_logger(options_, spec_)),
      clock_(spec_.clock ? spec_.clock : steady_supervisor_clock()),
      state_(std::make_shared<tree_state>()),
      notifier_(options_.systemd),
      // Installed now, before the tree starts: a signal during the start is not lost, it
      // waits in the set until the start has finished.
      signals_(strand_, SIGTERM, SIGINT) {
  spec_.clock = clock_;
  if (!spec_.logger) spec_.logger = logger_;
  // The observer is inherited by every nested supervisor: the service sees the whole tree.
  spec_.observer = [state = state_, user = std::move(spec_.observer)](supervisor_event const& e) {
    state->record(e);
    if (user) user(e);
  };
}

service_runner::~service_runner() = default;

void service_runner::start() {
  if (notifier_.wanted_but_missing()) {
    logger_->warn(
        "service: NOTIFY_SOCKET is set but backplane::service was built without libsystemd: "
        "systemd will not hear READY=1 (rebuild with libsystemd-dev installed, or use "
        "Type=simple)");
  }
  signals_.async_wait(asio::bind_executor(
      strand_, [self = shared_from_this()](boost::system::error_code ec, int signo) {
        self->on_signal(ec, signo);
      }));
  asio::post(root_ex_, [self = shared_from_this()] { self->start_root(); });
}

void service_runner::start_root() {
  // On the root's executor, as supervisor::start asks.
  try {
    validate(spec_);
  } catch (std::invalid_argument const& e) {
    logger_->error("service: the root supervisor's spec is invalid: {}", e.what());
    asio::post(strand_, [self = shared_from_this()] { self->finish(service_exit::bad_spec); });
    return;
  }
  auto r = supervisor::start(root_ex_, std::move(spec_));
  asio::post(strand_, [self = shared_from_this(), r = std::move(r)]() mutable {
    self->started(std::move(r));
  });
}

void service_runner::started(boost::system::result<supervisor, start_failure> r) {
  if (done_) return;
  if (!r) {
    logger_->error("service: failed to start: child {}: {}", r.error().id, r.error().reason);
    finish(service_exit::failed_start);
    return;
  }
  root_ = std::move(*r);
  logger_->info("service: supervision tree '{}' started", root_->path());
  root_->async_wait(asio::bind_executor(
      strand_, [self = shared_from_this()](boost::system::error_code, supervisor_exit exit) {
        if (exit.intensity_exceeded || exit.fault) {
          self->finish(service_exit::gave_up);
        } else {
          self->finish(service_exit::clean);
        }
      }));
  if (options_.http) {
    try {
      http_ = http_server::start(ctx_, *options_.http, *root_, state_);
    } catch (std::exception const& e) {
      // An address that cannot be bound is the service failing to start: the tree stops.
      logger_->error("service: cannot serve HTTP on {}:{}: {}", options_.http->address,
                     options_.http->port, e.what());
      start_status_ = service_exit::failed_start;
      stop_asked_ = true;
    }
  }
  if (stop_asked_) {
    begin_stop(start_status_ ? "HTTP not served" : "signal during the start");
    return;
  }
  // Armed first: whoever hears READY=1 may count on the watchdog's interval running from then.
  schedule_watchdog();
  notifier_.notify("READY=1\n" + systemd_notifier::status_line(status_summary()));
}

void service_runner::on_signal(boost::system::error_code ec, int signo) {
  if (ec || done_) return;  // cancelled by finish
  if (stopping_ || stop_asked_) {
    logger_->warn("service: {} again during the graceful stop: exiting now", signal_name(signo));
    finish(service_exit::forced);
    return;
  }
  logger_->info("service: {}: stopping the tree", signal_name(signo));
  stop_asked_ = true;
  signals_.async_wait(asio::bind_executor(
      strand_,
      [self = shared_from_this()](boost::system::error_code e, int s) { self->on_signal(e, s); }));
  // Before the root has started, `started` stops it as soon as it exists.
  if (root_) begin_stop(signal_name(signo));
}

void service_runner::begin_stop(char const* why) {
  if (stopping_ || done_) return;
  stopping_ = true;
  notifier_.notify("STOPPING=1\n" +
                   systemd_notifier::status_line(fmt::format("stopping ({})", why)));
  {
    std::lock_guard lock(timers_mutex_);
    watchdog_.reset();
    watchdog_off_ = true;
    if (!timers_closed_) {
      // Weak: a clock may keep a cancelled timer's callback until its time (the manual clock
      // does), and a strong reference there would keep the runner, and through its clock the
      // callback itself, alive for ever. The root's async_wait keeps the runner alive meanwhile.
      deadline_ = clock_->schedule(
          clock_->now() + options_.stop_deadline, strand_, [weak = weak_from_this()] {
            auto self = weak.lock();
            if (!self) return;
            self->logger_->error(
                "service: the graceful stop outlasted its deadline "
                "({}ms): exiting now",
                std::chrono::duration_cast<std::chrono::milliseconds>(self->options_.stop_deadline)
                    .count());
            self->finish(service_exit::deadline_exceeded);
          });
    }
  }
  // Children stop in reverse start order under their shutdown policies; async_wait (above)
  // completes when the root has ended.
  root_->async_stop(
      asio::bind_executor(strand_, [](boost::system::error_code, supervisor_exit) {}));
}

void service_runner::schedule_watchdog() {
  auto interval = notifier_.watchdog_interval();
  if (!interval) return;
  std::lock_guard lock(timers_mutex_);
  if (timers_closed_ || watchdog_off_) return;
  // Weak, as the stop deadline's (see begin_stop).
  watchdog_ = clock_->schedule(clock_->now() + *interval, root_ex_, [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->ping_watchdog();
  });
}

void service_runner::ping_watchdog() {
  // The ping goes out from the root's executor and only once the root has answered a request:
  // a wedged root supervisor (or a starved strand) stops the pings, and systemd restarts us.
  root_->async_count_children(asio::bind_executor(
      root_ex_, [self = shared_from_this()](boost::system::error_code ec, child_counts) {
        if (ec) return;  // the root has ended: finish decides what happens next
        self->notifier_.notify("WATCHDOG=1\n" +
                               systemd_notifier::status_line(self->status_summary()));
        self->schedule_watchdog();
      }));
}

std::string service_runner::status_summary() const {
  return fmt::format("{}: {} restarts", root_ ? root_->path() : std::string("starting"),
                     state_->total_restarts());
}

void service_runner::finish(service_exit status) {
  if (done_) return;
  if (status == service_exit::clean && start_status_) status = *start_status_;
  done_ = true;
  {
    std::lock_guard lock(timers_mutex_);
    timers_closed_ = true;
    deadline_.reset();
    watchdog_.reset();
  }
  boost::system::error_code ignored;
  signals_.cancel(ignored);
  signals_.clear(ignored);
  if (http_) http_->stop();
  auto text = fmt::format("service: ended: {} (exit status {})", to_string(status), to_int(status));
  if (status == service_exit::clean) {
    logger_->info(text);
  } else {
    logger_->error(text);
  }
  notifier_.notify(systemd_notifier::status_line(fmt::format("ended: {}", to_string(status))));
  auto h = std::move(handler_);
  auto ex = asio::get_associated_executor(h, ctx_.get_executor());
  asio::dispatch(ex, asio::append(std::move(h), status));
}

}  // namespace backplane::detail
