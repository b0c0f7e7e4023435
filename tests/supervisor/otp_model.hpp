#pragma once
// A reference model of OTP's supervisor rules, written plainly and
// sequentially, for the model test (model_test.cpp). It knows nothing of
// Asio: it is told what happened (a child ended, an API call arrived, time
// moved) and says what a supervisor that follows OTP must report and answer.
//
// The rules, after OTP's supervisor.erl:
// - A child's exit is decided: permanent always restarts, transient only
//   after a fault, temporary never (its spec is dropped).
// - Before each restart (and each retried start) the restart is counted:
//   restarts older than `period` leave the window (one exactly `period` old
//   stays, as in OTP's `Now - Then =< Period`); more than `max_restarts` in
//   it and the supervisor gives up: it stops every child, last started
//   first, and ends with a fault.
// - one_for_one restarts the child; one_for_all stops the others, last
//   started first, drops the temporary ones and starts all in order;
//   rest_for_one does the same for the child and those declared after it.
// - A start that fails in a restart is counted and retried later, behind
//   the calls already queued (OTP's try_again_restart). one_for_all stops
//   what the failed try started before it retries them all; rest_for_one
//   keeps the children before the failed one running and retries from it.
// - Stopping a child: `brutal` kills it; `timeout(d)` asks it to shut down
//   and kills it after d; `infinity` asks and waits. One that ignores the
//   kill too is abandoned after a grace period (d, or 5 s for brutal and
//   timeout(0)). A child that ends with a fault of its own while being
//   stopped is reported (shutdown_error), one that ends because it was asked
//   or killed is not.
// - The runtime API (start, terminate, restart, delete, stop) is answered in
//   order, after the decision in progress; exits heard meanwhile are decided
//   first.
//
// The few places where today's implementation is known to differ from OTP
// (issue 9, issue 8) are behind the flags in `model_rules`; the model
// encodes OTP's rule when the flag is on.

#include <backplane/supervisor.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace backplane::model {

using time_point = supervisor_clock::time_point;
using duration = supervisor_clock::duration;
using namespace std::chrono_literals;

/// How a child's incarnation ends when the test tells it to.
enum class ending : std::uint8_t {
  clean,    ///< a run returns normally
  value,    ///< a managed work returns a value (a clean exit)
  error,    ///< a run disconnects with fault::error, a managed work returns an error
  thrown,   ///< it throws
  cascade,  ///< a device it monitors faults (fault::cascade)
  drop,     ///< a run destroys its device while connected (fault::drop)
};

/// What a child does when it is asked to stop or killed.
enum class behaviour : std::uint8_t {
  comply,           ///< stops when asked, dies when killed
  crash_on_stop,    ///< a run that disconnects with fault::error when asked or killed
  ignore_shutdown,  ///< ignores the request (a managed work: the first cancellation)
  ignore_all,       ///< ignores the request and the kill: it is abandoned
};

enum class form : std::uint8_t { run, managed };
enum class policy : std::uint8_t { brutal, timeout, infinity };

[[nodiscard]] inline bool faulty(ending e) { return e != ending::clean && e != ending::value; }
/// The reason class a report shows for an exit that ended this way.
[[nodiscard]] inline std::string reason_of(ending e) {
  switch (e) {
    case ending::clean:
    case ending::value: return "clean";
    case ending::error:
    case ending::thrown: return "error";
    case ending::cascade: return "cascade";
    case ending::drop: return "drop";
  }
  return "?";
}

/// One child's declaration, fixed for its life (all its incarnations).
struct child_conf {
  std::string id;
  restart_type restart = restart_type::permanent;
  policy pol = policy::timeout;
  duration timeout = 1s;
  form shape = form::run;
  behaviour reacts = behaviour::comply;
  bool nested = false;  ///< a nested supervisor (the model's `nested` member)
};

/// An event as the model predicts it; the test reduces real events to this.
struct expected_event {
  std::string child;
  std::uint64_t incarnation = 0;
  supervisor_event_kind kind = supervisor_event_kind::child_terminated;
  /// Its first word: restart, none, give_up, retry, cancel, abandon, running
  /// ("" for intensity_exceeded, whose action is always the same).
  std::string action;
  std::string reason;  ///< for child_terminated: clean, error, cascade, drop; "" otherwise
  std::uint32_t restarts = 0;
  friend bool operator==(expected_event const&, expected_event const&) = default;
};

[[nodiscard]] inline std::string to_text(expected_event const& e) {
  return fmt::format("{}#{} {} action={} reason={} restarts={}", e.child, e.incarnation,
                     to_string(e.kind), e.action, e.reason, e.restarts);
}

/// Switches for where the implementation and OTP are known to differ.
struct model_rules {
  /// Issue 9.1: rest_for_one retries from the failed child and keeps those
  /// before it running (OTP). Off: stop what the try started, retry all.
  bool otp_rest_for_one_retry = true;
  /// Issue 9.4: start_child with the id of a child waiting to restart
  /// answers already_present (OTP). Off: `restarting`.
  bool otp_already_present_when_restarting = true;
  /// Issue 8: a child that throws after it was killed (brutal, or after its
  /// timeout), within the grace period, is reported like any other fault of
  /// its own during a stop (shutdown_error with what it threw). Any other
  /// end after the kill (a run's plain fault::error(), which is also what
  /// manage ends with when cancelled; a drop; a cascade) is the kill's
  /// result. OTP has no such case (its kill cannot be ignored). Off: a
  /// killed child is never reported.
  bool report_own_fault_after_kill = true;
};

/// How the world resolved a wait for a stubborn child's stop.
struct wait_result {
  bool deadline_passed = false;
  std::optional<ending> ended_by;  ///< the child ended on its own meanwhile
};

class sup_model;

/// What the model asks of the test: the model is waiting for `c` of `s` to
/// stop until `deadline`; the test may make other things happen meanwhile
/// (through the model's `note_*`/`call` members) and then either moves the
/// clock to the deadline or ends the child.
class world {
 public:
  virtual ~world() = default;
  virtual wait_result wait_stop(sup_model& s, child_conf const& c, std::uint64_t incarnation,
                                time_point deadline, bool killed) = 0;
  /// An incarnation was abandoned: it still runs, unlinked.
  virtual void abandoned(sup_model& s, std::string const& id, std::uint64_t incarnation) = 0;
};

enum class status : std::uint8_t { running, restarting, stopped };

struct m_child {
  child_conf conf;
  status st = status::stopped;
  std::uint64_t incarnation = 0;
  std::uint64_t seq = 0;  ///< invalidates a queued retry
  std::string anchor;     ///< restarting as a member of this child's group restart
};

/// An API call's answer, as predicted.
struct answer {
  bool done = false;
  supervisor_errc code{};  ///< meaningful when `failed`
  bool failed = false;
};

class sup_model {
 public:
  using job = std::function<void()>;

  sup_model(std::string path, restart_strategy strategy, std::uint32_t max_restarts,
            duration period, model_rules rules, world& w, time_point& now)
      : path_(std::move(path)),
        strategy_(strategy),
        max_(max_restarts),
        period_(period),
        rules_(rules),
        world_(w),
        now_(now) {}

  // --- the tree ---
  sup_model* nested = nullptr;  ///< the nested supervisor's model, if a child is one
  /// Called when this (nested) supervisor ends by itself: `fault` true if it gave up.
  std::function<void()> on_gave_up;
  /// Called when this supervisor starts its nested child (a fresh incarnation of it).
  std::function<void()> on_nested_start;

  [[nodiscard]] std::string const& path() const { return path_; }
  [[nodiscard]] std::vector<m_child> const& children() const { return children_; }
  [[nodiscard]] std::vector<expected_event> const& events() const { return events_; }
  [[nodiscard]] bool stopping() const { return stopping_; }
  [[nodiscard]] bool ended() const { return ended_; }
  [[nodiscard]] bool gave_up() const { return gave_up_; }
  [[nodiscard]] bool idle() const { return exits_.empty() && jobs_.empty(); }
  m_child* find(std::string const& id) {
    for (auto& c : children_)
      if (c.conf.id == id) return &c;
    return nullptr;
  }

  /// Declares and starts the children (none may fail), as supervisor::start.
  void start(std::vector<child_conf> const& declared) {
    children_.clear();
    exits_.clear();
    jobs_.clear();
    window_.clear();
    stopping_ = ended_ = gave_up_ = false;
    for (auto const& c : declared) {
      children_.push_back(m_child{});
      children_.back().conf = c;
      bool ok = start_one(children_.back());
      (void)ok;  // declared starts are never told to fail
    }
  }

  /// Arms `n` start failures for `id` (whichever record has that id when it starts).
  void fail_starts(std::string const& id, int n) { fail_next_[id] = n; }

  /// A child's incarnation ended on its own (not asked): noted, decided by `run`.
  void note_exit(std::string const& id, std::uint64_t incarnation, std::optional<ending> how,
                 std::string reason) {
    m_child* c = find(id);
    if (c && c->incarnation == incarnation && c->st == status::running) c->st = status::stopped;
    exits_.push_back(exit_note{id, incarnation, how && faulty(*how), std::move(reason)});
  }

  /// The supervisor's loop, from an idle state with things noted or queued:
  /// returns when it is idle again or has ended.
  void run() {
    if (ended_) return;
    while (!exits_.empty() || (!jobs_.empty() && !stopping_)) {
      if (!exits_.empty()) {
        exit_note n = exits_.front();
        exits_.pop_front();
        decide(n);
      } else {
        job j = std::move(jobs_.front());
        jobs_.pop_front();
        j();
      }
    }
    if (stopping_) finish_stop();
  }

  /// An API call arrives. `queued`: the supervisor is busy (a wait is in
  /// progress), so it runs after; otherwise it runs now.
  void call(std::function<void()> body, std::shared_ptr<answer> const& a, bool queued) {
    if (ended_ || stopping_) {
      *a = {true, supervisor_errc::supervisor_down, true};
      return;
    }
    jobs_.push_back([this, body = std::move(body), a] {
      if (stopping_) {
        *a = {true, supervisor_errc::supervisor_down, true};
        return;
      }
      body();
    });
    if (!queued) run();
  }

  void api_start_child(child_conf conf, std::shared_ptr<answer> a, bool queued) {
    call(
        [this, conf, a] {
          if (m_child* c = find(conf.id)) {
            supervisor_errc e = c->st == status::running   ? supervisor_errc::running
                                : c->st == status::stopped ? supervisor_errc::already_present
                                : rules_.otp_already_present_when_restarting
                                    ? supervisor_errc::already_present
                                    : supervisor_errc::restarting;
            *a = {true, e, true};
            return;
          }
          children_.push_back(m_child{});
          m_child& c = children_.back();
          c.conf = conf;
          if (!start_one(c)) {
            report(supervisor_event_kind::start_error, c, "none", "");
            remove(conf.id);
            *a = {true, supervisor_errc::start_failed, true};
            return;
          }
          *a = {true, {}, false};
        },
        a, queued);
  }

  void api_terminate_child(std::string id, std::shared_ptr<answer> a, bool queued) {
    call(
        [this, id, a] {
          m_child* c = find(id);
          if (!c) {
            *a = {true, supervisor_errc::not_found, true};
            return;
          }
          stop_child(id);
          c = find(id);
          if (c && c->conf.restart == restart_type::temporary) remove(id);
          *a = {true, {}, false};
        },
        a, queued);
  }

  void api_restart_child(std::string id, std::shared_ptr<answer> a, bool queued) {
    call(
        [this, id, a] {
          m_child* c = find(id);
          if (!c) {
            *a = {true, supervisor_errc::not_found, true};
          } else if (c->st == status::running) {
            *a = {true, supervisor_errc::running, true};
          } else if (c->st == status::restarting) {
            *a = {true, supervisor_errc::restarting, true};
          } else if (!start_one(*c)) {
            report(supervisor_event_kind::start_error, *c, "none", "");
            *a = {true, supervisor_errc::start_failed, true};
          } else {
            *a = {true, {}, false};
          }
        },
        a, queued);
  }

  void api_delete_child(std::string id, std::shared_ptr<answer> a, bool queued) {
    call(
        [this, id, a] {
          m_child* c = find(id);
          if (!c) {
            *a = {true, supervisor_errc::not_found, true};
          } else if (c->st == status::running) {
            *a = {true, supervisor_errc::running, true};
          } else if (c->st == status::restarting) {
            *a = {true, supervisor_errc::restarting, true};
          } else {
            remove(id);
            *a = {true, {}, false};
          }
        },
        a, queued);
  }

  /// async_stop (or a parent's shutdown request): stop everything now, or
  /// after the decision in progress when `queued`.
  void api_stop(bool queued) {
    if (ended_) return;
    stopping_ = true;
    if (!queued) run();
  }

  /// The parent stops this nested supervisor (all its children comply).
  void stopped_by_parent() {
    if (ended_) return;
    stopping_ = true;
    run();
  }

  /// The restarts in the window at `now` (what a report shows).
  [[nodiscard]] std::uint32_t in_window() const {
    std::uint32_t n = 0;
    for (auto t : window_)
      if (now_ - t <= period_) ++n;
    return n;
  }

 private:
  struct exit_note {
    std::string id;
    std::uint64_t incarnation;
    bool fault;
    std::string reason;
  };

  void report(supervisor_event_kind kind, m_child const& c, std::string action,
              std::string reason) {
    report(kind, c.conf.id, c.incarnation, std::move(action), std::move(reason));
  }
  void report(supervisor_event_kind kind, std::string const& id, std::uint64_t inc,
              std::string action, std::string reason) {
    events_.push_back(
        expected_event{id, inc, kind, std::move(action), std::move(reason), in_window()});
  }

  /// Counts a restart; true if that exceeds the intensity.
  bool add_restart() {
    std::erase_if(window_, [&](time_point t) { return now_ - t > period_; });
    window_.push_back(now_);
    return window_.size() > max_;
  }

  bool start_one(m_child& c) {
    ++c.incarnation;
    if (int& f = fail_next_[c.conf.id]; f > 0) {
      --f;
      return false;
    }
    c.st = status::running;
    c.anchor.clear();
    if (c.conf.nested && on_nested_start) on_nested_start();
    return true;
  }

  void remove(std::string const& id) {
    for (auto& c : children_) {
      if (c.anchor == id && c.st == status::restarting) {
        c.st = status::stopped;
        c.anchor.clear();
      }
    }
    std::erase_if(children_, [&](m_child const& c) { return c.conf.id == id; });
  }

  void give_up(std::string const& id, std::uint64_t inc, std::string const& reason) {
    (void)reason;  // compared for child_terminated only
    report(supervisor_event_kind::intensity_exceeded, id, inc, "", "");
    stopping_ = true;
    gave_up_ = true;
  }

  void decide(exit_note const& n) {
    if (stopping_) {
      report(supervisor_event_kind::child_terminated, n.id, n.incarnation, "none", n.reason);
      return;
    }
    m_child* c = find(n.id);
    if (!c || c->incarnation != n.incarnation || c->st != status::stopped) {
      report(supervisor_event_kind::child_terminated, n.id, n.incarnation, "none", n.reason);
      return;
    }
    bool const again = c->conf.restart == restart_type::permanent ||
                       (c->conf.restart == restart_type::transient && n.fault);
    if (!again) {
      report(supervisor_event_kind::child_terminated, n.id, n.incarnation, "none", n.reason);
      if (c->conf.restart == restart_type::temporary) remove(n.id);
      return;
    }
    if (add_restart()) {
      report(supervisor_event_kind::child_terminated, n.id, n.incarnation, "give_up", n.reason);
      give_up(n.id, n.incarnation, n.reason);
      return;
    }
    report(supervisor_event_kind::child_terminated, n.id, n.incarnation, "restart", n.reason);
    restart(n.id);
  }

  std::vector<std::string> group_of(std::string const& id) {
    std::vector<std::string> g;
    bool after = false;
    for (auto& c : children_) {
      after = after || c.conf.id == id;
      if (strategy_ == restart_strategy::one_for_all ||
          (strategy_ == restart_strategy::rest_for_one && after) || c.conf.id == id)
        g.push_back(c.conf.id);
    }
    return g;
  }

  /// OTP's restart(Strategy, Child, State), after the restart was counted.
  void restart(std::string const& id) {
    auto const group = group_of(id);
    // Stop the rest of the group, last started first.
    for (auto it = group.rbegin(); it != group.rend(); ++it) {
      m_child* c = find(*it);
      if (*it != id && c && c->st != status::stopped) stop_child(*it);
      if (stopping_) return;
    }
    // Temporary members are dropped; the others wait to start, in order.
    for (auto const& g : group) {
      m_child* c = find(g);
      if (!c) continue;
      if (g == id) {
        c->st = status::restarting;
        c->anchor.clear();
      } else if (c->conf.restart == restart_type::temporary) {
        remove(g);
      } else {
        c->st = status::restarting;
        c->anchor = id;
      }
    }
    start_group(id);
  }

  /// Starts `anchor`'s waiting group in order; a failed start is counted and
  /// retried.
  void start_group(std::string const& anchor) {
    std::vector<std::string> members;
    for (auto& c : children_)
      if (c.st == status::restarting && (c.conf.id == anchor || c.anchor == anchor))
        members.push_back(c.conf.id);
    std::vector<std::string> started;
    for (std::size_t i = 0; i < members.size(); ++i) {
      m_child* c = find(members[i]);
      if (start_one(*c)) {
        report(supervisor_event_kind::restarted, *c, "none", "");
        started.push_back(members[i]);
        continue;
      }
      if (add_restart()) {
        report(supervisor_event_kind::start_error, *c, "give_up", "");
        give_up(c->conf.id, c->incarnation, "");
        return;  // the stop that follows stops what this try started
      }
      report(supervisor_event_kind::start_error, *c, "retry", "");
      std::vector<std::string> retry(members.begin(), members.end());
      std::string next_anchor = anchor;
      if (rules_.otp_rest_for_one_retry && strategy_ == restart_strategy::rest_for_one) {
        // OTP: those before the failed child stay up; the retry starts from it.
        retry.assign(members.begin() + static_cast<std::ptrdiff_t>(i), members.end());
        next_anchor = members[i];
      } else {
        for (auto it = started.rbegin(); it != started.rend(); ++it) {
          stop_child(*it);
          if (stopping_) return;
        }
      }
      for (auto const& m : retry) {
        m_child* r = find(m);
        if (!r || r->st == status::running) continue;
        r->st = status::restarting;
        r->anchor = m == next_anchor ? std::string() : next_anchor;
      }
      m_child* a = find(next_anchor);
      if (!a) return;
      a->st = status::restarting;
      std::uint64_t const seq = ++a->seq;
      jobs_.push_back([this, next_anchor, seq] {
        if (stopping_) return;
        m_child* r = find(next_anchor);
        if (!r || r->seq != seq || r->st != status::restarting) return;
        start_group(next_anchor);
      });
      return;
    }
  }

  /// Stops one child (any status), waiting through the world when it does
  /// not stop at once.
  void stop_child(std::string const& id) {
    m_child* c = find(id);
    ++c->seq;
    if (c->st != status::running) {
      if (c->st == status::restarting) {
        for (auto& m : children_) {
          if (m.anchor == id && m.st == status::restarting) {
            m.st = status::stopped;
            m.anchor.clear();
          }
        }
      }
      c->st = status::stopped;
      c->anchor.clear();
      return;
    }
    child_conf const conf = c->conf;
    std::uint64_t const inc = c->incarnation;
    c->st = status::stopped;  // whatever happens below, it is no longer running
    if (conf.nested) {
      if (nested) nested->stopped_by_parent();
      return;
    }
    bool killed = conf.pol == policy::brutal;
    bool const asked = !killed;  // a shutdown request went first
    auto own_fault = [&](ending e) {
      if (!faulty(e)) return;
      if (killed && (!rules_.report_own_fault_after_kill || e != ending::thrown)) return;
      report(supervisor_event_kind::shutdown_error, conf.id, inc, "none", "");
    };
    // What the child did when it ended on its own during the wait.
    auto ended = [&](ending e) {
      // A managed work that was asked to stop ends cleanly, whatever it
      // returns: the request wins (manage's rule).
      if (conf.shape == form::managed && asked) return;
      own_fault(e);
    };
    duration const grace = conf.pol == policy::timeout && conf.timeout > duration::zero()
                               ? conf.timeout
                               : duration(5s);
    auto abandon_phase = [&] {
      auto r = world_.wait_stop(*this, conf, inc, now_ + grace, true);
      if (r.deadline_passed) {
        report(supervisor_event_kind::shutdown_error, conf.id, inc, "abandon", "");
        world_.abandoned(*this, conf.id, inc);
      } else {
        ended(*r.ended_by);
      }
    };
    if (killed) {
      bool const dies = conf.reacts == behaviour::comply ||
                        conf.reacts == behaviour::crash_on_stop ||
                        (conf.shape == form::run && conf.reacts == behaviour::ignore_shutdown);
      if (!dies) return abandon_phase();
      if (conf.reacts == behaviour::crash_on_stop) own_fault(ending::error);
      return;
    }
    if (conf.reacts == behaviour::comply) return;
    if (conf.reacts == behaviour::crash_on_stop) return own_fault(ending::error);
    // Stubborn: only with a timeout (an infinite wait would be the test's hang).
    auto r = world_.wait_stop(*this, conf, inc, now_ + conf.timeout, false);
    if (!r.deadline_passed) return ended(*r.ended_by);
    report(supervisor_event_kind::shutdown_error, conf.id, inc, "cancel", "");
    killed = true;
    if (conf.reacts == behaviour::ignore_shutdown) return;  // dies on the kill
    abandon_phase();
  }

  void finish_stop() {
    // Last started first. Stopping removes no record, and calls that arrive
    // meanwhile wait in the queue.
    for (std::size_t i = children_.size(); i-- > 0;) stop_child(children_[i].conf.id);
    while (!exits_.empty()) {
      auto n = exits_.front();
      exits_.pop_front();
      report(supervisor_event_kind::child_terminated, n.id, n.incarnation, "none", n.reason);
    }
    while (!jobs_.empty()) {
      auto j = std::move(jobs_.front());
      jobs_.pop_front();
      j();
    }
    ended_ = true;
    if (gave_up_ && on_gave_up) on_gave_up();
  }

  std::string path_;
  restart_strategy strategy_;
  std::uint32_t max_;
  duration period_;
  model_rules rules_;
  world& world_;
  time_point& now_;
  std::vector<m_child> children_;
  std::deque<exit_note> exits_;
  std::deque<job> jobs_;
  std::vector<time_point> window_;
  std::map<std::string, int> fail_next_;  // by id: starts that will fail
  std::vector<expected_event> events_;
  bool stopping_ = false;
  bool ended_ = false;
  bool gave_up_ = false;
};

}  // namespace backplane::model
