#pragma once
// The supervisor's state machine. Private to src/.
//
// One coroutine (run) owns the supervisor's device and is the only reader of
// its mailbox. Everything else that must reach it (API calls, timers, restart
// retries) runs on the same executor, queues a job and interrupts the pending
// receive through per-operation cancellation: only the backplane's public API
// is used, as the design requires.
//
// While a decision or a job awaits (stopping a child waits for its exit),
// child records are held by pointer, so only jobs, run one at a time between
// decisions, add or remove records; a child's exit heard meanwhile is noted
// and decided afterwards.

#include "child_run.hpp"
#include "device_index.hpp"
#include "pending_restart.hpp"
#include "restart_backoff.hpp"
#include "restart_window.hpp"
#include "stop_deadline.hpp"

#include <backplane/device.hpp>
#include <backplane/fault.hpp>
#include <backplane/line.hpp>
#include <backplane/message.hpp>
#include <backplane/supervisor/supervisor.hpp>

#include <spdlog/common.h>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <any>
#include <atomic>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace backplane::detail {

/// How one call of a start function went.
enum class start_outcome : std::uint8_t {
  started,
  ignored,  ///< start_result::ignore(): no child, not a failure
  failed,
};

struct child_record;
/// The children in start order. A list, so that adding or removing one of
/// 100k is O(1): each record knows its own place.
using child_list = std::list<std::unique_ptr<child_record>>;

struct child_record {
  child_spec spec;           // without its start function, which is in `identity`
  child_list::iterator pos;  // its place in the supervisor's list
  std::shared_ptr<child_identity> identity;
  child_status status = child_status::stopped;
  line ln;
  device_id dev;
  std::uint64_t incarnation = 0;
  std::shared_ptr<child_run> run;  // the running incarnation
  /// With child_strands: this child's strand, made at its first start and
  /// reused by its restarts (a strand costs allocations to make and to
  /// type-erase). Dropped when an incarnation is abandoned, so that a run
  /// that never finishes cannot hold up the next one. Boxed: most
  /// supervisors have no strands, and an executor is 56 bytes.
  std::unique_ptr<boost::asio::any_io_executor> strand;
  restart_backoff backoff;
  /// The parked restart it waits in (status restarting), its own or its
  /// group's; empty otherwise, and while the restart is under way.
  std::shared_ptr<pending_restart> restart;
};

/// A child exit seen while the supervisor was busy, decided later.
struct exit_note {
  std::string id;
  device_id dev;
  std::uint64_t incarnation;
  std::optional<fault> f;
  event_reason reason;
};

class supervisor_impl : public std::enable_shared_from_this<supervisor_impl> {
 public:
  using job = std::function<boost::asio::awaitable<void>()>;
  template <class T>
  using handler_t = boost::asio::any_completion_handler<void(boost::system::error_code, T)>;
  using void_handler_t = boost::asio::any_completion_handler<void(boost::system::error_code)>;

  supervisor_impl(boost::asio::any_io_executor ex, supervisor_spec spec, std::string path,
                  supervisor_spec const* parent);

  /// Starts the declared children in order on the calling thread; on failure
  /// the started ones are left for run() to stop.
  std::optional<start_failure> start_declared();
  /// The supervisor's whole life, after start_declared. `self` keeps it alive
  /// for as long as it runs, whoever else holds it.
  boost::asio::awaitable<void> run(std::shared_ptr<supervisor_impl> self);

  /// For a nested supervisor: run with the device its parent made for it, and
  /// give it back to `home` at the end instead of disconnecting it.
  void adopt_device(device d, device* home);
  void set_home(device* home) noexcept { home_ = home; }
  [[nodiscard]] std::string const& path() const noexcept { return path_; }
  /// Set at construction, never changed: readable from any thread.
  [[nodiscard]] auto_shutdown auto_shutdown_flag() const noexcept { return spec_.auto_shutdown; }
  [[nodiscard]] boost::asio::any_io_executor const& executor() const noexcept { return ex_; }
  [[nodiscard]] device_id id() const noexcept { return id_; }
  [[nodiscard]] backplane::line const& line() const noexcept { return line_; }
  /// Its parent kills it: stop every child at once (brutally) and end with a
  /// fault. On ex_.
  void kill_all();
  /// Calls the spec's on_start hook, if any, with a handle.
  void started();
  /// run() (or an API call's handling) threw: the supervisor's own
  /// bookkeeping failed, std::bad_alloc say. It ends at once, as a child that
  /// throws does: its device disconnects with fault::error() and `e` as the
  /// cause (a nested one's parent does that), so its monitors hear it and
  /// its children hear their peer's fault; async_wait/async_stop complete
  /// with that fault; later calls answer supervisor_down. On ex_.
  void crashed(std::exception_ptr e) noexcept;
  /// Once run() has returned.
  [[nodiscard]] supervisor_exit const& exit() const noexcept { return exit_; }
  [[nodiscard]] std::string give_up_text() const;
  /// Why intensity refuses a restart, as read at the decision: "4 restarts > 3 in 5s".
  [[nodiscard]] std::string intensity_text() const;

  // --- API, always called on ex_ ---
  void api_start_child(child_spec spec, handler_t<child_start_result> h);
  /// start_child's work; `direct` when called from the API's own handler
  /// (not from a job), so that the reply may run at once.
  void start_dynamic(child_spec spec, handler_t<child_start_result> h, bool direct);
  void api_terminate_child(std::string id, void_handler_t h);
  void api_restart_child(std::string id, handler_t<child_start_result> h);
  void api_delete_child(std::string id, void_handler_t h);
  void api_which_children(handler_t<std::vector<child_info>> h);
  void api_count_children(handler_t<child_counts> h);
  void api_budget(handler_t<restart_budget> h);
  void api_stop(bool request, handler_t<supervisor_exit> h);
  // tree_view.cpp
  void api_which_child(std::string const& id, handler_t<child_info> h);
  void api_get_childspec(std::string const& id, handler_t<child_spec> h);
  void api_find_supervisor(std::string path, handler_t<std::optional<supervisor>> h);
  void api_tree_view(handler_t<tree_node> h);

 private:
  // mailbox
  boost::asio::awaitable<std::tuple<boost::system::error_code, message>> receive();
  void wake();
  void enqueue(job j);
  /// How a child whose exit was awaited ended.
  struct child_exit {
    std::optional<backplane::fault> fault;
    event_reason reason;  // built only if some report could use it
    bool killed = false;  // by our kill: not a fault of its own
  };
  /// Records what a message means; exits go to exits_ unless the exit is of
  /// `target`, the child whose exit the caller is waiting for: that one is
  /// returned.
  std::optional<child_exit> note(message const& m, child_record const* target);

  // children
  child_record* find(std::string const& id);
  child_record* add_record(child_spec spec);
  /// One start of one incarnation. On failure `why` says why; on failure
  /// or ignore the status is left as it was. `info`, if given, receives what
  /// the start function attached.
  start_outcome start_incarnation(child_record& r, event_reason& why, std::any* info = nullptr);
  /// Starts the incarnation's coroutine(s) on its executor. May throw
  /// (std::bad_alloc), before anything of the child runs.
  static void launch(std::shared_ptr<child_run> const& run,
                     std::optional<boost::asio::awaitable<void>> body,
                     std::unique_ptr<detail::managed_launch> managed);
  boost::asio::awaitable<void> stop_child(child_record& r);
  /// Waits for `r` to end, until `deadline`: how it ended, or nullopt if it
  /// still runs then.
  boost::asio::awaitable<std::optional<child_exit>> await_exit(
      child_record& r, std::optional<supervisor_clock::time_point> deadline);
  void kill(child_record& r);
  /// Asks a running child to stop, as a shutdown request from this supervisor would.
  void request_stop(child_record& r);
  void abandon(child_record& r);
  /// Unlinks a device we no longer watch; remembers its id if its exit may
  /// already be in the mailbox.
  void retire(backplane::line const& l);
  /// `r`, stopped or removed, leaves the parked restart it waits in: the
  /// whole restart if it is the one the restart is for.
  void leave_restart(child_record& r);
  boost::asio::awaitable<void> stop_all();
  void remove(child_record* r);

  // decisions
  //
  // Most decisions complete synchronously, without a coroutine frame: the
  // one_for_one restart of a crashed child is decide + restart. Only what
  // must wait for children to stop (a group restart with running members, a
  // retry that must first stop what it started) continues as a coroutine.
  using group_t = std::vector<child_record*>;
  /// Whether the end of `ended`, a significant child that will not be
  /// restarted, shuts the supervisor down: the rule that says so
  /// ("any_significant", "all_significant"), or empty (significant.cpp).
  [[nodiscard]] std::string_view auto_shutdown_after(child_record const& ended) const;
  /// Reports and counts an exit; returns the restart it calls for.
  std::optional<pending_restart> decide(exit_note const& n);
  void decide_while_stopping(exit_note const& n);
  /// OTP's restart(Strategy, Child, State), one pass: the group stops, last
  /// started first; its temporary members are dropped; after a delay (or a
  /// failed start) it is parked; it starts in order, and a start that fails
  /// counts toward intensity and retries from the failed child. Returns
  /// false when members must stop first: restart_after_stops does that and
  /// comes back here with `p`.
  [[nodiscard]] bool restart(pending_restart& p);
  boost::asio::awaitable<void> restart_after_stops(pending_restart p);
  /// A member that must stop before the group starts: running, or parked in
  /// another restart.
  [[nodiscard]] static bool must_stop(child_record const& m) noexcept {
    return m.status == child_status::running || m.restart;
  }
  /// A start of `c` failed: counts it toward intensity (false: gave up),
  /// reports it and makes `p` its retry.
  bool start_failed(pending_restart& p, child_record& c, event_reason const& why);
  /// A restart's start said ignore: the child stays stopped, not retried.
  void ignored_restart(child_record& c);
  /// Parks `p` until its delay has passed (or, without one, behind the mailbox).
  void park(pending_restart p);
  group_t group_of(child_record* failed);
  [[nodiscard]] supervisor_clock::duration backoff_delay(child_record& r);
  void give_up(std::string const& id, device_id dev, std::uint64_t incarnation,
               event_reason const& reason);

  // shutdown deadlines: one timer for all the stops of a batch
  /// What the deadline's timer runs: deadline_fired, if we are still alive.
  struct deadline_fire {
    std::weak_ptr<supervisor_impl> self;
    void operator()() const;
  };
  [[nodiscard]] deadline_fire make_deadline_fire() { return deadline_fire{weak_from_this()}; }
  void deadline_fired();

  // reports
  /// Whether an event of this kind would reach anyone (observer or logger):
  /// callers skip building its strings otherwise.
  [[nodiscard]] bool heard(supervisor_event_kind kind, bool clean = false) const;
  /// One event to the observer and the logger (report_delivery.hpp: what
  /// either throws is caught, counted and told once).
  void report(supervisor_event_kind kind, std::string const& child, device_id dev,
              std::uint64_t incarnation, event_reason reason, supervisor_action action,
              std::optional<supervisor_clock::duration> delay = std::nullopt,
              std::string_view note = {});
  void report(supervisor_event_kind kind, child_record const& r, event_reason reason,
              supervisor_action action) {
    report(kind, r.spec.id, r.dev, r.incarnation, std::move(reason), action);
  }
  [[nodiscard]] event_reason exit_reason(child_record const& r, disconnected const& gone) const;
  /// Whether any report would be heard (observer, or a logger not off).
  [[nodiscard]] bool reasons_wanted() const;
  void finish();

  boost::asio::any_io_executor ex_;
  supervisor_spec spec_;
  std::string path_;
  device dev_;
  device* home_ = nullptr;  // nested: where the device goes back at the end
  device_id id_;
  backplane::line line_;
  std::shared_ptr<supervisor_clock> clock_;
  std::shared_ptr<spdlog::logger> logger_;
  bool json_ = false;
  bool child_strands_ = true;
  restart_window window_;
  child_list children_;
  std::unordered_map<std::string, child_record*> by_id_;
  device_index<child_record> by_device_;   // running incarnations
  std::unordered_set<device_id> retired_;  // unlinked devices whose exit may still be queued
  boost::asio::cancellation_signal wake_;
  std::deque<job> jobs_;
  std::deque<exit_note> exits_;
  bool idle_ = false;      // parked in the top-level receive with nothing queued
  bool stopping_ = false;  // shutdown requested or decided
  bool killed_ = false;    // killed by the parent: children are stopped brutally
  bool ended_ = false;
  supervisor_exit exit_;
  std::string gave_up_because_;  // intensity_text() when it gave up
  std::vector<handler_t<supervisor_exit>> exit_waiters_;
  std::minstd_rand rng_;
  std::uint64_t report_failures_ = 0;      // observer or logger calls that threw
  std::optional<stop_deadline> deadline_;  // made with clock_, in the constructor
};

/// Makes handles (the constructor is private).
struct supervisor_access {
  static supervisor make(std::shared_ptr<supervisor_impl> impl) {
    return supervisor(std::move(impl));
  }
};

/// Throws std::invalid_argument if `spec` is significant under a supervisor
/// (`supervisor`, its path or name) whose auto_shutdown is never (significant.cpp).
void validate_significance(child_spec const& spec, std::string_view supervisor, auto_shutdown flag);

/// The start function of `supervisor_child`.
start_result start_nested(supervisor_spec const& spec, child_context& ctx);

}  // namespace backplane::detail
