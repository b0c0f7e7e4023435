// The allocation hooks behind alloc_counter.hpp.
//
// Where: the C allocator itself (malloc, calloc, realloc, aligned_alloc,
// posix_memalign, memalign, free), interposed in this executable and
// forwarded to glibc's __libc_* functions. Replacing only operator new would
// miss most of what Asio allocates: its per-thread recycling allocator (the
// memory of operations, coroutine frames and cancellation slots) calls
// std::aligned_alloc directly. operator new itself ends in malloc, so it is
// counted there too. Under AddressSanitizer or ThreadSanitizer, whose runtimes
// own malloc, the global operator new/delete are replaced instead: C++
// allocations are counted and can fail, Asio's recycled blocks are not seen.

#include "reliability/alloc_counter.hpp"

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <new>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BACKPLANE_COUNT_OPERATOR_NEW 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define BACKPLANE_COUNT_OPERATOR_NEW 1
#endif
#endif

namespace {

std::atomic<std::int64_t> live_{0};
std::atomic<std::uint64_t> total_{0};
std::atomic<std::uint64_t> fail_at_{0};  // the value of total_ that fails; 0 = never
std::atomic<bool> fired_{false};

/// Counts one allocation; false if it is the one that must fail.
bool allowed() noexcept {
  std::uint64_t const t = total_.fetch_add(1, std::memory_order_relaxed) + 1;
  std::uint64_t const f = fail_at_.load(std::memory_order_relaxed);
  if (f != 0 && t == f) {
    fired_.store(true, std::memory_order_relaxed);
    return false;
  }
  return true;
}
void* counted(void* p) noexcept {
  if (p) live_.fetch_add(1, std::memory_order_relaxed);
  return p;
}
void uncounted(void* p) noexcept {
  if (p) live_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace

namespace backplane::test::alloc {
std::int64_t live() noexcept { return live_.load(std::memory_order_relaxed); }
std::uint64_t total() noexcept { return total_.load(std::memory_order_relaxed); }
void fail_at(std::uint64_t n) noexcept {
  if (n != 0) fired_.store(false, std::memory_order_relaxed);
  fail_at_.store(n == 0 ? 0 : total() + n, std::memory_order_relaxed);
}
bool fired() noexcept { return fired_.load(std::memory_order_relaxed); }
}  // namespace backplane::test::alloc

#if defined(BACKPLANE_COUNT_OPERATOR_NEW)

namespace {
void* take(std::size_t n, std::size_t align, bool nothrow) {
  if (!allowed()) {
    if (nothrow) return nullptr;
    throw std::bad_alloc();
  }
  if (n == 0) n = 1;
  void* p = align > alignof(std::max_align_t)
                ? std::aligned_alloc(align, (n + align - 1) / align * align)
                : std::malloc(n);
  if (!p) {
    if (nothrow) return nullptr;
    throw std::bad_alloc();
  }
  return counted(p);
}
void give(void* p) noexcept {
  uncounted(p);
  std::free(p);
}
}  // namespace

// NOLINTBEGIN: the replaceable global allocation functions
void* operator new(std::size_t n) { return take(n, 0, false); }
void* operator new[](std::size_t n) { return take(n, 0, false); }
void* operator new(std::size_t n, std::align_val_t a) {
  return take(n, static_cast<std::size_t>(a), false);
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return take(n, static_cast<std::size_t>(a), false);
}
void* operator new(std::size_t n, std::nothrow_t const&) noexcept {
  try {
    return take(n, 0, true);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, std::nothrow_t const&) noexcept {
  try {
    return take(n, 0, true);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t n, std::align_val_t a, std::nothrow_t const&) noexcept {
  try {
    return take(n, static_cast<std::size_t>(a), true);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, std::align_val_t a, std::nothrow_t const&) noexcept {
  try {
    return take(n, static_cast<std::size_t>(a), true);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { give(p); }
void operator delete[](void* p) noexcept { give(p); }
void operator delete(void* p, std::size_t) noexcept { give(p); }
void operator delete[](void* p, std::size_t) noexcept { give(p); }
void operator delete(void* p, std::align_val_t) noexcept { give(p); }
void operator delete[](void* p, std::align_val_t) noexcept { give(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { give(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { give(p); }
void operator delete(void* p, std::nothrow_t const&) noexcept { give(p); }
void operator delete[](void* p, std::nothrow_t const&) noexcept { give(p); }
void operator delete(void* p, std::align_val_t, std::nothrow_t const&) noexcept { give(p); }
void operator delete[](void* p, std::align_val_t, std::nothrow_t const&) noexcept { give(p); }
// NOLINTEND

#else

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);

// NOLINTBEGIN: interposing the C allocator
void* malloc(std::size_t n) {
  if (!allowed()) return nullptr;
  return counted(__libc_malloc(n));
}
void* calloc(std::size_t k, std::size_t n) {
  if (!allowed()) return nullptr;
  return counted(__libc_calloc(k, n));
}
void* realloc(void* p, std::size_t n) {
  if (!p) return malloc(n);
  if (n == 0) {
    uncounted(p);
    __libc_free(p);
    return nullptr;
  }
  if (!allowed()) return nullptr;  // p stays valid, as realloc promises
  return __libc_realloc(p, n);
}
void* aligned_alloc(std::size_t align, std::size_t n) {
  if (!allowed()) return nullptr;
  return counted(__libc_memalign(align, n));
}
void* memalign(std::size_t align, std::size_t n) {
  if (!allowed()) return nullptr;
  return counted(__libc_memalign(align, n));
}
int posix_memalign(void** out, std::size_t align, std::size_t n) {
  if (!allowed()) return ENOMEM;
  void* p = counted(__libc_memalign(align, n));
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
void free(void* p) {
  uncounted(p);
  __libc_free(p);
}
// NOLINTEND
}

#endif
