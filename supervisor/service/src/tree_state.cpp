// tree_state: counters and reports from the tree's events.

#include "tree_state.hpp"

#include <string_view>

namespace backplane::detail {

void tree_state::record(supervisor_event const& e) {
  std::vector<std::shared_ptr<subscriber>> to_tell;
  report r;
  {
    std::lock_guard lock(mutex_);
    switch (e.event) {
      case supervisor_event_kind::child_terminated:
      case supervisor_event_kind::start_error: {
        auto& c = children_[{e.supervisor, e.child}];
        if (e.reason.kind != reason_kind::clean && e.reason.kind != reason_kind::none) {
          ++c.crashes;
          c.last_reason = to_string(e.reason);
        }
        // restart or retry (perhaps after a delay): the child is down until its `restarted`
        // event; any other action means nobody will start it again.
        c.restart_pending =
            e.action == supervisor_action::restart || e.action == supervisor_action::retry;
        c.status = c.restart_pending ? "restarting" : "stopped";
        c.incarnation = e.incarnation;
        break;
      }
      case supervisor_event_kind::restarted: {
        auto& c = children_[{e.supervisor, e.child}];
        ++c.restarts;
        ++restarts_;
        c.restart_pending = false;
        c.status = "running";
        c.incarnation = e.incarnation;
        break;
      }
      case supervisor_event_kind::intensity_exceeded:
        ++intensity_[e.supervisor];
        // The supervisor stopped every child and ended: nothing of it is pending any more.
        for (auto& [key, c] : children_) {
          if (key.first == e.supervisor) {
            c.restart_pending = false;
            c.status = "stopped";
          }
        }
        break;
      case supervisor_event_kind::shutdown_error: break;
    }
    r.seq = ++seq_;
    r.json = format_json(e);
    reports_.push_back(r);
    if (reports_.size() > kept_reports) reports_.pop_front();
    to_tell.reserve(subscribers_.size());
    for (auto const& [id, fn] : subscribers_) to_tell.push_back(fn);
  }
  for (auto const& fn : to_tell) (*fn)(r);
}

std::map<std::pair<std::string, std::string>, tree_state::child_counters> tree_state::children()
    const {
  std::lock_guard lock(mutex_);
  return children_;
}

std::map<std::string, std::uint64_t> tree_state::intensity_exceeded() const {
  std::lock_guard lock(mutex_);
  return intensity_;
}

std::vector<tree_state::report> tree_state::last_reports() const {
  std::lock_guard lock(mutex_);
  return {reports_.begin(), reports_.end()};
}

std::uint64_t tree_state::total_restarts() const {
  std::lock_guard lock(mutex_);
  return restarts_;
}

std::shared_ptr<void> tree_state::subscribe(subscriber fn) {
  std::lock_guard lock(mutex_);
  auto id = next_subscriber_++;
  subscribers_.emplace(id, std::make_shared<subscriber>(std::move(fn)));
  // The handle's deleter unsubscribes; it keeps this object alive as long as it exists.
  struct token {};
  return std::shared_ptr<void>(new token, [self = shared_from_this(), id](token* t) {
    delete t;
    std::lock_guard lock(self->mutex_);
    self->subscribers_.erase(id);
  });
}

}  // namespace backplane::detail
