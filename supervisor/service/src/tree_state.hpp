#pragma once
// tree_state: what the service learns from the tree's events: counters for /metrics, pending
// restarts for /readyz, the last crash reports for the page, and the /events subscribers.

#include <backplane/supervisor/events.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace backplane::detail {

/// Fed by the root spec's observer (inherited by every nested supervisor, so it sees the whole
/// tree), read by the HTTP handlers. Its own mutex guards it; the supervisors are never
/// locked or waited for.
///
/// Thread-safety: every member may be called from any thread.
class tree_state : public std::enable_shared_from_this<tree_state> {
 public:
  /// Per supervisor path and child id.
  struct child_counters {
    std::uint64_t restarts = 0;  ///< `restarted` events
    std::uint64_t crashes = 0;   ///< `child_terminated` events whose reason is not "clean"
    bool restart_pending = false;
    std::string status = "running";  ///< as the last event left it: running, restarting, stopped
    std::uint64_t incarnation = 0;   ///< the last event's
    std::string last_reason{};
  };

  /// One event as the page shows it (and /events streams it).
  struct report {
    std::uint64_t seq = 0;
    std::string json{};  ///< format_json of the event
  };

  using subscriber = std::function<void(report const&)>;

  void record(supervisor_event const& e);

  /// (supervisor path, child id) -> counters, ordered.
  [[nodiscard]] std::map<std::pair<std::string, std::string>, child_counters> children() const;
  /// supervisor path -> how many times it gave up.
  [[nodiscard]] std::map<std::string, std::uint64_t> intensity_exceeded() const;
  /// The last reports, oldest first (at most `kept_reports`).
  [[nodiscard]] std::vector<report> last_reports() const;
  [[nodiscard]] std::uint64_t total_restarts() const;

  /// Calls `fn` for every later report, from the thread that records it, until the returned
  /// handle is destroyed (the handle keeps this object alive). `fn` must not block and must not
  /// call back into this object; it may still be called once just after the handle is gone.
  [[nodiscard]] std::shared_ptr<void> subscribe(subscriber fn);

  static constexpr std::size_t kept_reports = 50;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, child_counters> children_;
  std::map<std::string, std::uint64_t> intensity_;
  std::deque<report> reports_;
  std::uint64_t seq_ = 0;
  std::uint64_t restarts_ = 0;
  std::map<std::uint64_t, std::shared_ptr<subscriber>> subscribers_;
  std::uint64_t next_subscriber_ = 0;
};

}  // namespace backplane::detail
