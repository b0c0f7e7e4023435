#include <backplane/device_id.hpp>

#include <atomic>

namespace backplane {

namespace {
// Ids are handed to threads in blocks so that creating devices on many
// threads at once does not bounce one cache line between cores.
constexpr std::uint64_t block_size = 1024;
std::atomic<std::uint64_t> next_block{1};

struct id_block {
  std::uint64_t next = 0;
  std::uint64_t end = 0;
};
thread_local id_block block;
}  // namespace

device_id device_id::next() noexcept {
  if (block.next == block.end) {
    block.next = next_block.fetch_add(block_size, std::memory_order_relaxed);
    block.end = block.next + block_size;
  }
  return device_id(block.next++);
}

}  // namespace backplane
