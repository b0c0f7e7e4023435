#pragma once
// The dynamic supervisor's state machine. Private to src/.
//
// One coroutine (run) owns the supervisor's device and is the only reader of
// its mailbox; it decides each child exit as it hears it. API calls run on
// the same executor (a strand on a multi-threaded context) between its
// receives and never wait: stopping a child sends the request (or cancels),
// arms its deadline and returns; the child's exit, heard later, completes
// whoever waits for it. So any number of children stop at once, and starting
// or terminating one is O(1): a record in an intrusive list (start order) and
// in an open-addressing index by device.

#include "device_index.hpp"
#include "dynamic_child.hpp"
#include "restart_backoff.hpp"
#include "restart_window.hpp"

#include <backplane/device.hpp>
#include <backplane/supervisor/dynamic_supervisor.hpp>

#include <boost/asio/cancellation_signal.hpp>

#include <functional>
#include <memory>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

namespace backplane::detail {

/// One child: its per-child start function (the template bound to its
/// arguments), its current incarnation and what waits for it.
struct dynamic_child {
  start_function start;
  std::shared_ptr<child_incarnation> run;  // while running
  backplane::line ln;
  device_id dev;  // the running (or last) incarnation's
  std::uint64_t incarnation = 0;
  child_status status = child_status::running;
  bool stopping = false;   // terminate_child or the supervisor's stop asked it to end
  bool timed_out = false;  // its shutdown timeout passed: it was cancelled
  restart_backoff backoff;
  std::uint64_t restart_seq = 0;
  std::unique_ptr<supervisor_clock::timer> timer;  // restart delay or shutdown deadline
  std::unique_ptr<supervisor_clock::timer> grace;  // cancelled while stopping: abandon at
  std::vector<boost::asio::any_completion_handler<void(boost::system::error_code)>> stop_waiters;
  std::unique_ptr<boost::asio::any_io_executor> strand;  // with child_strands
  dynamic_child* prev = nullptr;
  dynamic_child* next = nullptr;
};

class dynamic_supervisor_impl : public std::enable_shared_from_this<dynamic_supervisor_impl> {
 public:
  template <class T>
  using handler_t = boost::asio::any_completion_handler<void(boost::system::error_code, T)>;
  using void_handler_t = boost::asio::any_completion_handler<void(boost::system::error_code)>;

  /// `parent`: the options a nested supervisor inherits, or nullptr.
  dynamic_supervisor_impl(boost::asio::any_io_executor ex, dynamic_supervisor_spec spec,
                          std::string path, supervisor_spec const* parent);
  ~dynamic_supervisor_impl();
  dynamic_supervisor_impl(dynamic_supervisor_impl const&) = delete;
  dynamic_supervisor_impl& operator=(dynamic_supervisor_impl const&) = delete;

  /// The supervisor's whole life. `self` keeps it alive while it runs.
  boost::asio::awaitable<void> run(std::shared_ptr<dynamic_supervisor_impl> self);
  /// For a nested supervisor: run on the device its parent made.
  void adopt_device(device d);
  /// A nested supervisor's device, back from run() when it has ended.
  device take_device() { return std::move(dev_); }

  [[nodiscard]] boost::asio::any_io_executor const& executor() const noexcept { return ex_; }
  [[nodiscard]] device_id id() const noexcept { return id_; }
  [[nodiscard]] backplane::line const& line() const noexcept { return line_; }
  [[nodiscard]] std::string const& path() const noexcept { return shared_->supervisor; }
  [[nodiscard]] supervisor_exit const& exit() const noexcept { return exit_; }
  [[nodiscard]] std::string give_up_text() const;
  [[nodiscard]] bool ended() const noexcept { return ended_; }
  [[nodiscard]] std::shared_ptr<supervisor_clock> const& clock() const noexcept { return clock_; }

  /// Called (on ex_) when the supervisor gives up, before it stops its
  /// children: a worker pool fails its jobs there. Set before run().
  std::function<void()> on_give_up;
  /// Called (on ex_) when it starts stopping, however it was asked to.
  std::function<void()> on_stop;
  /// Called (on ex_) once it has ended, after its device disconnected.
  /// The hooks are dropped then (or when run()'s frame is destroyed with its
  /// context), so that what they hold may hold the supervisor.
  std::function<void()> on_end;

  // --- API, always called on ex_ ---
  void api_start_child(start_function start, handler_t<device_id> h);
  void api_terminate_child(device_id dev, void_handler_t h);
  void api_which_children(handler_t<std::vector<dynamic_child_info>> h);
  void api_count_children(handler_t<child_counts> h);
  void api_stop(bool request, handler_t<supervisor_exit> h);
  /// Its parent kills it: every child brutally, then end with a fault.
  void kill_all();
  /// Its own bookkeeping threw (std::bad_alloc): it ends at once with
  /// fault::error() and `e` as cause (heard by its monitors and children),
  /// answers its waiters with that exit and every later call with
  /// supervisor_down, and a pool fails its jobs. Never silently.
  void crashed(std::exception_ptr e) noexcept;
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  void on_message(message const& m);
  void on_exit(dynamic_child& c, disconnected const& gone);
  /// Starts one incarnation; on failure `why` says why.
  bool start_incarnation(dynamic_child& c, event_reason& why);
  void restart(dynamic_child& c);
  void schedule_restart(dynamic_child& c, supervisor_clock::duration delay);
  [[nodiscard]] supervisor_clock::duration backoff_delay(dynamic_child& c);
  /// Sends the stop (request or cancel) under the shutdown policy and arms
  /// the deadline; the exit, heard later, finishes it.
  void stop_one(dynamic_child& c);
  void kill(dynamic_child& c);
  /// Cancels a child being stopped, and abandons it if it ignores that too.
  void cancel_stopping(dynamic_child& c);
  void begin_stop();
  void give_up(device_id dev, std::uint64_t incarnation, event_reason const& reason);
  void retire(backplane::line const& l);
  void remove(dynamic_child& c);
  void maybe_finish();
  void finish();

  [[nodiscard]] bool heard(supervisor_event_kind kind, bool clean = false) const;
  /// One event to the observer and the logger (report_delivery.hpp: what
  /// either throws is caught, counted and told once).
  void report(supervisor_event_kind kind, dynamic_child const& c, event_reason reason,
              supervisor_action action,
              std::optional<supervisor_clock::duration> delay = std::nullopt,
              std::string_view note = {});
  void report(supervisor_event_kind kind, device_id dev, std::uint64_t incarnation,
              event_reason reason, supervisor_action action,
              std::optional<supervisor_clock::duration> delay = std::nullopt,
              std::string_view note = {});

  boost::asio::any_io_executor ex_;
  dynamic_supervisor_spec spec_;
  /// What nested supervisors among the children inherit (child_context's
  /// parent_options): the options above, as a supervisor_spec.
  supervisor_spec options_;
  std::shared_ptr<incarnation_shared const> shared_;
  device dev_;
  device_id id_;
  backplane::line line_;
  std::shared_ptr<supervisor_clock> clock_;
  std::shared_ptr<spdlog::logger> logger_;
  bool json_ = false;
  bool child_strands_ = true;
  restart_window window_;
  dynamic_child* first_ = nullptr;
  dynamic_child* last_ = nullptr;
  std::size_t size_ = 0;
  device_index<dynamic_child> by_device_;
  std::unordered_set<device_id> retired_;
  boost::asio::cancellation_signal wake_;  // ends run()'s receive when the supervisor ends
  bool stopping_ = false;
  bool killed_ = false;
  bool ended_ = false;
  bool nested_ = false;  // runs on a device its parent made, which it gives back
  supervisor_exit exit_;
  std::uint64_t report_failures_ = 0;  // observer or logger calls that threw
  std::vector<handler_t<supervisor_exit>> exit_waiters_;
  std::minstd_rand rng_;
};

/// A nested dynamic supervisor's life as its parent sees it: the run, then
/// the device back to the parent's incarnation (`home`), disconnected with
/// the way it ended (a give-up as an exception, so the parent's report says
/// why).
boost::asio::awaitable<void> nested_dynamic_life(std::shared_ptr<dynamic_supervisor_impl> impl,
                                                 device* home);

}  // namespace backplane::detail
