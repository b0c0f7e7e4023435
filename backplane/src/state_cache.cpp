#include "state_cache.hpp"

#include <new>

namespace backplane::detail {

namespace {

/// Gives the thread's blocks back when the thread exits, and closes its cache, so that a
/// state freed later in the exit (by another thread_local's destructor) is freed, not kept.
struct reaper {
  reaper() = default;
  reaper(reaper const&) = delete;
  reaper& operator=(reaper const&) = delete;
  ~reaper() {
    state_block_cache& c = this_thread_state_blocks();
    c.reaper = state_block_cache::closed;
    while (c.count != 0) ::operator delete(c.blocks[--c.count]);
  }
};

}  // namespace

void* allocate_state_block_slow(std::size_t size) { return ::operator new(size); }

void free_state_block_slow(void* p) noexcept {
  if constexpr (state_cache_capacity != 0) {
    state_block_cache& c = this_thread_state_blocks();
    if (c.reaper == state_block_cache::unarmed) {
      // Constructing the thread_local registers its destructor for this thread's exit
      // (the first time only; it cannot fail after the thread's first registration).
      thread_local reaper r;
      (void)r;
      c.reaper = state_block_cache::armed;
      if (c.count != state_cache_capacity) {
        c.blocks[c.count++] = p;
        return;
      }
    }
  }
  ::operator delete(p);
}

}  // namespace backplane::detail
