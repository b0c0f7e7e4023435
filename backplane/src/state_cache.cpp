#include "state_cache.hpp"

#include <new>

namespace backplane::detail {

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t cache_capacity = 0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr std::size_t cache_capacity = 0;
#else
constexpr std::size_t cache_capacity = 16;
#endif
#else
constexpr std::size_t cache_capacity = 16;
#endif

/// Blocks of one size (device states have one). Freed at thread exit.
class block_cache {
 public:
  block_cache() = default;
  block_cache(block_cache const&) = delete;
  block_cache& operator=(block_cache const&) = delete;
  ~block_cache() {
    while (count_ != 0) ::operator delete(blocks_[--count_]);
  }

  void* take() noexcept { return count_ != 0 ? blocks_[--count_] : nullptr; }
  bool keep(void* p) noexcept {
    if (count_ == cache_capacity) return false;
    blocks_[count_++] = p;
    return true;
  }

 private:
  void* blocks_[cache_capacity == 0 ? 1 : cache_capacity];
  std::size_t count_ = 0;
};

thread_local block_cache cache;

}  // namespace

void* allocate_state_block(std::size_t size) {
  if constexpr (cache_capacity != 0) {
    if (void* p = cache.take()) return p;
  }
  return ::operator new(size);
}

void free_state_block(void* p, std::size_t size) noexcept {
  if constexpr (cache_capacity != 0) {
    if (cache.keep(p)) return;
  }
  (void)size;
  ::operator delete(p);
}

}  // namespace backplane::detail
