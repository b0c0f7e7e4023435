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

#include <cstddef>

namespace backplane::detail {

/// A block of `size` bytes (the size of a device state) from this thread's cache, or new.
[[nodiscard]] void* allocate_state_block(std::size_t size);
/// Returns a block from allocate_state_block to this thread's cache, or frees it.
void free_state_block(void* p, std::size_t size) noexcept;

}  // namespace backplane::detail
