#pragma once
// The complete shared state of a device. Private to src/.

#include "link_table.hpp"
#include "mailbox.hpp"
#include "spin_mutex.hpp"
#include "state_cache.hpp"

#include <backplane/detail/state.hpp>

#include <atomic>

namespace backplane::detail {

class waiter_service;

/// Everything below `mu` is guarded by it, except the service list links,
/// which the owning waiter_service guards.
struct device_state : state_header {
  explicit device_state(device_id i) noexcept : state_header(i) {}

  // Memory from a per-thread cache (state_cache.hpp): a device costs no malloc in the
  // steady state.
  static void* operator new(std::size_t size) { return allocate_state_block(size); }
  static void operator delete(void* p) noexcept { free_state_block(p); }

  spin_mutex mu;
  bool connected = true;
  bool work_signal = false;  // a bound work finished since the last wait looked
  wake_on waiting_for = wake_on::message;
  waiter* parked = nullptr;  // at most one: a device has one owner
  link_table links;
  mailbox inbox;

  // Registration with the waiter_service of the context we last waited on,
  // so that the context's shutdown can destroy a parked waiter.
  std::atomic<waiter_service*> service{nullptr};
  device_state* svc_prev = nullptr;
  device_state* svc_next = nullptr;
  bool svc_listed = false;
};

inline device_state* full(state_header* s) noexcept { return static_cast<device_state*>(s); }

}  // namespace backplane::detail
