#include "waiter_service.hpp"

#include <atomic>
#include <vector>

namespace backplane::detail {

boost::asio::execution_context::id waiter_service::id;

namespace {
// Bumped by every shutdown, so a per-thread cache entry can never name a
// service whose context has died (a new context may reuse the address).
std::atomic<std::uint64_t> service_epoch{0};

struct service_cache {
  boost::asio::execution_context* ctx = nullptr;
  waiter_service* svc = nullptr;
  std::uint64_t epoch = 0;
};
thread_local service_cache cache;
}  // namespace

waiter_service::waiter_service(boost::asio::execution_context& ctx)
    : boost::asio::execution_context::service(ctx) {}

waiter_service& waiter_service::of(boost::asio::execution_context& ctx) {
  auto epoch = service_epoch.load(std::memory_order_acquire);
  if (cache.ctx == &ctx && cache.epoch == epoch) return *cache.svc;
  auto& svc = boost::asio::use_service<waiter_service>(ctx);
  cache = {&ctx, &svc, epoch};
  return svc;
}

void waiter_service::enlist(device_state* s) {
  delist(s);
  std::lock_guard lock(mu_);
  s->svc_prev = nullptr;
  s->svc_next = head_;
  if (head_) head_->svc_prev = s;
  head_ = s;
  s->svc_listed = true;
  s->service.store(this, std::memory_order_release);
}

void waiter_service::remove_locked(device_state* s) noexcept {
  if (!s->svc_listed) return;
  if (s->svc_prev)
    s->svc_prev->svc_next = s->svc_next;
  else
    head_ = s->svc_next;
  if (s->svc_next) s->svc_next->svc_prev = s->svc_prev;
  s->svc_prev = s->svc_next = nullptr;
  s->svc_listed = false;
}

void waiter_service::delist(device_state* s) noexcept {
  // Most devices never wait (or were delisted already): skip the locked exchange. The owner
  // is the only one that lists a state, so a null seen here cannot turn non-null under us.
  if (s->service.load(std::memory_order_acquire) == nullptr) return;
  waiter_service* svc = s->service.exchange(nullptr, std::memory_order_acq_rel);
  if (!svc) return;
  std::lock_guard lock(svc->mu_);
  svc->remove_locked(s);
}

void waiter_service::shutdown() {
  std::vector<waiter*> doomed;
  {
    std::lock_guard lock(mu_);
    while (device_state* s = head_) {
      remove_locked(s);
      {
        std::lock_guard state_lock(s->mu);
        if (s->parked) doomed.push_back(std::exchange(s->parked, nullptr));
      }
      // The last touch of s: an owner disconnecting on another thread that
      // reads null here skips mu_ and may free s at once, so nothing may
      // follow it.
      s->service.store(nullptr, std::memory_order_release);
    }
  }
  service_epoch.fetch_add(1, std::memory_order_acq_rel);
  // Destroying a waiter destroys its coroutine frame, whose device then
  // disconnects (fault::drop) and may touch other states: no lock is held.
  for (waiter* w : doomed) w->destroy(w);
}

}  // namespace backplane::detail
