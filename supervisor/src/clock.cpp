#include <backplane/supervisor/clock.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <map>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace backplane {

namespace {

// Both clocks guard against the one race timers have: a callback already
// queued when its timer is destroyed. The shared flag is checked where the
// callback runs, on the executor that destroys the timer.
struct cancel_flag {
  std::atomic<bool> cancelled{false};
};

class steady_clock_impl final : public supervisor_clock {
 public:
  [[nodiscard]] time_point now() const override {
    return std::chrono::time_point_cast<duration>(std::chrono::steady_clock::now());
  }

  class steady_timer_impl final : public timer {
   public:
    steady_timer_impl(boost::asio::any_io_executor ex) : timer_(std::move(ex)) {}
    ~steady_timer_impl() override {
      flag_->cancelled.store(true, std::memory_order_release);
      timer_.cancel();
    }
    boost::asio::steady_timer timer_;
    std::shared_ptr<cancel_flag> flag_ = std::make_shared<cancel_flag>();
  };

  [[nodiscard]] std::unique_ptr<timer> schedule(time_point at, boost::asio::any_io_executor ex,
                                                std::function<void()> fn) override {
    auto t = std::make_unique<steady_timer_impl>(ex);
    t->timer_.expires_at(at);
    t->timer_.async_wait([flag = t->flag_, fn = std::move(fn)](boost::system::error_code ec) {
      if (!ec && !flag->cancelled.load(std::memory_order_acquire)) fn();
    });
    return t;
  }
};

}  // namespace

std::shared_ptr<supervisor_clock> steady_supervisor_clock() {
  static auto const instance = std::make_shared<steady_clock_impl>();
  return instance;
}

struct manual_clock::state {
  mutable std::mutex mu;
  time_point now{};
  std::uint64_t next_seq = 0;
  struct entry {
    boost::asio::any_io_executor ex;
    std::function<void()> fn;
    std::shared_ptr<cancel_flag> flag;
  };
  std::multimap<std::pair<time_point, std::uint64_t>, entry> due;
};

namespace {
/// Cancelling drops the callback at once, not when time reaches it: the
/// callback may own (a shared_ptr to) whoever owns the clock, and a cycle
/// through a cancelled entry would keep both alive for ever.
class manual_timer final : public supervisor_clock::timer {
 public:
  manual_timer(std::shared_ptr<cancel_flag> f, std::function<void()> drop)
      : flag_(std::move(f)), drop_(std::move(drop)) {}
  ~manual_timer() override {
    flag_->cancelled.store(true, std::memory_order_release);
    if (drop_) drop_();
  }

 private:
  std::shared_ptr<cancel_flag> flag_;
  std::function<void()> drop_;  // removes the queued entry, if still queued
};
}  // namespace

manual_clock::manual_clock() : state_(std::make_shared<state>()) {}
manual_clock::~manual_clock() = default;

manual_clock::time_point manual_clock::now() const {
  std::lock_guard lock(state_->mu);
  return state_->now;
}

std::unique_ptr<supervisor_clock::timer> manual_clock::schedule(time_point at,
                                                                boost::asio::any_io_executor ex,
                                                                std::function<void()> fn) {
  auto flag = std::make_shared<cancel_flag>();
  std::vector<state::entry> now_due;
  std::optional<std::pair<time_point, std::uint64_t>> queued;
  {
    std::lock_guard lock(state_->mu);
    state::entry e{std::move(ex), std::move(fn), flag};
    if (at <= state_->now) {
      now_due.push_back(std::move(e));
    } else {
      queued = std::make_pair(at, state_->next_seq++);
      state_->due.emplace(*queued, std::move(e));
    }
  }
  for (auto& e : now_due) {
    boost::asio::post(e.ex, [fn = std::move(e.fn), flag = e.flag] {
      if (!flag->cancelled.load(std::memory_order_acquire)) fn();
    });
  }
  std::function<void()> drop;
  if (queued) {
    drop = [weak = std::weak_ptr<state>(state_), key = *queued] {
      auto st = weak.lock();
      if (!st) return;
      std::function<void()> dropped;  // destroyed outside the lock: it may schedule
      std::lock_guard lock(st->mu);
      auto it = st->due.find(key);
      if (it == st->due.end()) return;  // fired already
      dropped = std::move(it->second.fn);
      st->due.erase(it);
    };
  }
  return std::make_unique<manual_timer>(std::move(flag), std::move(drop));
}

void manual_clock::advance(duration d) {
  std::vector<state::entry> fire;
  {
    std::lock_guard lock(state_->mu);
    state_->now += d;
    auto end = state_->due.upper_bound(std::make_pair(state_->now, ~std::uint64_t{0}));
    for (auto it = state_->due.begin(); it != end; ++it) fire.push_back(std::move(it->second));
    state_->due.erase(state_->due.begin(), end);
  }
  for (auto& e : fire) {
    if (e.flag->cancelled.load(std::memory_order_acquire)) continue;
    boost::asio::post(e.ex, [fn = std::move(e.fn), flag = e.flag] {
      if (!flag->cancelled.load(std::memory_order_acquire)) fn();
    });
  }
}

std::size_t manual_clock::pending() const {
  std::lock_guard lock(state_->mu);
  std::size_t n = 0;
  for (auto const& [k, e] : state_->due)
    if (!e.flag->cancelled.load(std::memory_order_acquire)) ++n;
  return n;
}

}  // namespace backplane
