#pragma once
// A per-thread cache of device-state memory blocks. Creating and destroying a device was a
// malloc and a free of 240 bytes, about a third of the instructions of a link-and-notify
// cycle; most programs free states at the rate they make them, on the same threads, so a few
// blocks kept per thread serve nearly every allocation (Asio recycles its handlers' and
// coroutine frames' memory the same way).
//
// Only memory is recycled, never identity: every state takes a fresh device_id, so a reused
// block cannot be mistaken for the device that lived there before.
//
// A block may be freed on another thread than the one that allocated it; it then joins that
// thread's cache. Under AddressSanitizer the cache is off, so that use-after-free of a state
// is still reported.
//
// The fast paths are inline and the per-thread slot is plain data (constant-initialised,
// trivially destructible), so that reaching it costs no call and no guard; the blocks it
// holds are given back at thread exit by a second thread_local that the first block kept
// arms (state_cache.cpp).

#include <cstddef>
#include <cstdint>

namespace backplane::detail {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr std::size_t state_cache_capacity = 0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr std::size_t state_cache_capacity = 0;
#else
inline constexpr std::size_t state_cache_capacity = 16;
#endif
#else
inline constexpr std::size_t state_cache_capacity = 16;
#endif

/// One thread's blocks (device states have one size).
struct state_block_cache {
  enum : std::uint8_t { unarmed, armed, closed };  // closed: the thread is exiting
  void* blocks[state_cache_capacity == 0 ? 1 : state_cache_capacity];
  std::uint32_t count;
  std::uint8_t reaper;
};

[[nodiscard]] inline state_block_cache& this_thread_state_blocks() noexcept {
  thread_local constinit state_block_cache cache{};
  return cache;
}

/// Out of line: a block from the heap.
[[nodiscard]] void* allocate_state_block_slow(std::size_t size);
/// Out of line: keeps `p` after arming the thread's reaper, or frees it.
void free_state_block_slow(void* p) noexcept;

/// A block of `size` bytes (the size of a device state) from this thread's cache, or new.
[[nodiscard]] inline void* allocate_state_block(std::size_t size) {
  if constexpr (state_cache_capacity != 0) {
    state_block_cache& c = this_thread_state_blocks();
    if (c.count != 0) return c.blocks[--c.count];
  }
  return allocate_state_block_slow(size);
}

/// Returns a block from allocate_state_block to this thread's cache, or frees it.
inline void free_state_block(void* p) noexcept {
  if constexpr (state_cache_capacity != 0) {
    state_block_cache& c = this_thread_state_blocks();
    if (c.reaper == state_block_cache::armed && c.count != state_cache_capacity) {
      c.blocks[c.count++] = p;
      return;
    }
  }
  free_state_block_slow(p);
}

}  // namespace backplane::detail
