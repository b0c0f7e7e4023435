#pragma once
// A test-and-test-and-set lock for the few-instruction critical sections of a
// device state. A std::mutex costs more than the whole create/destroy budget
// (40 ns) twice over; these sections never block and never allocate except
// when a link table or mailbox grows.

#include <atomic>
#include <thread>

namespace backplane::detail {

class spin_mutex {
 public:
  void lock() noexcept {
    for (unsigned spins = 0;; ++spins) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins > 64) {
          // The holder was probably preempted; let it run.
          std::this_thread::yield();
          spins = 0;
        } else {
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause();
#endif
        }
      }
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace backplane::detail
