#pragma once
// service_runner: one service's life: start the root, answer signals, tell systemd, end once.

#include "systemd_notifier.hpp"

#include <backplane/service/run_service.hpp>
#include <backplane/supervisor/supervisor.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>

#include <memory>
#include <mutex>
#include <optional>

namespace backplane::detail {

class http_server;
class tree_state;

/// Runs one root supervisor as a service. Everything it decides happens on its own strand,
/// apart from the root's, so that a wedged tree cannot keep the stop deadline or a second
/// signal from ending the process; the watchdog, on the contrary, pings from the root's
/// executor, so that a wedged root stops pinging.
class service_runner : public std::enable_shared_from_this<service_runner> {
 public:
  using handler_type = boost::asio::any_completion_handler<void(service_exit)>;

  service_runner(boost::asio::io_context& ctx, supervisor_spec root, service_options options,
                 handler_type handler);
  ~service_runner();

  /// Posts the start to the root's strand. Call once.
  void start();

 private:
  using strand_type = boost::asio::strand<boost::asio::io_context::executor_type>;

  void start_root();  // on root_ex_
  void started(boost::system::result<supervisor, start_failure> r);
  void on_signal(boost::system::error_code ec, int signo);
  void begin_stop(char const* why);
  void schedule_watchdog();  // any thread
  void ping_watchdog();      // on root_ex_
  void finish(service_exit status);
  [[nodiscard]] std::string status_summary() const;

  boost::asio::io_context& ctx_;
  strand_type strand_;   // the service's own decisions
  strand_type root_ex_;  // the root supervisor's executor
  supervisor_spec spec_;
  service_options options_;
  handler_type handler_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<supervisor_clock> clock_;
  std::shared_ptr<tree_state> state_;
  systemd_notifier notifier_;
  boost::asio::signal_set signals_;

  // On strand_.
  std::optional<supervisor> root_;
  std::shared_ptr<http_server> http_;
  bool stop_asked_ = false;  // a signal arrived (perhaps before the root started)
  bool stopping_ = false;    // the root was asked to stop
  bool done_ = false;
  std::optional<service_exit> start_status_;  // what a clean end really is (HTTP did not bind)

  // The timers are reset by finish (strand_) and rescheduled from the root's executor.
  std::mutex timers_mutex_;
  std::unique_ptr<supervisor_clock::timer> deadline_;
  std::unique_ptr<supervisor_clock::timer> watchdog_;
  bool timers_closed_ = false;
  bool watchdog_off_ = false;  // set when stopping: systemd has heard STOPPING=1
};

}  // namespace backplane::detail
