#pragma once
// device_index: which child record a running device belongs to. Private to src/.
//
// The supervisor adds an entry at every start and removes it at every exit,
// so a node-based map cost an allocation and a free per restart. This is an
// open-addressing table (linear probing, backward-shift deletion, no
// tombstones) keyed by the device id's value; 0, the "nobody" id, marks an
// empty slot. It grows at 1/2 load and never shrinks.

#include <backplane/device_id.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace backplane::detail {

template <class T>
class device_index {
 public:
  /// The value for `id`, or nullptr.
  [[nodiscard]] T* find(device_id id) const noexcept {
    if (slots_.empty() || !id) return nullptr;
    for (std::size_t i = home(id.value());; i = next(i)) {
      slot const& s = slots_[i];
      if (s.key == id.value()) return s.value;
      if (s.key == 0) return nullptr;
    }
  }

  /// Adds or replaces the value for `id` (not the nobody id).
  void insert(device_id id, T* value) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    place(id.value(), value);
  }

  /// Removes `id`; true if it was there.
  bool erase(device_id id) noexcept {
    if (slots_.empty() || !id) return false;
    std::size_t i = home(id.value());
    for (;; i = next(i)) {
      if (slots_[i].key == id.value()) break;
      if (slots_[i].key == 0) return false;
    }
    // Backward shift: pull later entries of the probe run into the hole
    // unless that would move them before their home slot.
    for (std::size_t j = next(i);; j = next(j)) {
      if (slots_[j].key == 0) break;
      std::size_t const h = home(slots_[j].key);
      bool const movable = i <= j ? (h <= i || h > j) : (h <= i && h > j);
      if (movable) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = slot{};
    --size_;
    return true;
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  struct slot {
    std::uint64_t key = 0;
    T* value = nullptr;
  };

  [[nodiscard]] std::size_t home(std::uint64_t key) const noexcept {
    // Ids come in runs from per-thread blocks: mix the bits (Fibonacci hashing).
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  [[nodiscard]] std::size_t next(std::size_t i) const noexcept {
    return (i + 1) & (slots_.size() - 1);
  }

  void place(std::uint64_t key, T* value) {
    for (std::size_t i = home(key);; i = next(i)) {
      if (slots_[i].key == key) {
        slots_[i].value = value;
        return;
      }
      if (slots_[i].key == 0) {
        slots_[i] = slot{key, value};
        ++size_;
        return;
      }
    }
  }

  void grow() {
    std::vector<slot> old = std::move(slots_);
    std::size_t const capacity = old.empty() ? 16 : old.size() * 2;
    slots_.assign(capacity, slot{});
    shift_ = 64;
    for (std::size_t c = capacity; c > 1; c >>= 1) --shift_;
    size_ = 0;
    for (slot const& s : old)
      if (s.key != 0) place(s.key, s.value);
  }

  std::vector<slot> slots_;
  std::size_t size_ = 0;
  unsigned shift_ = 64;
};

}  // namespace backplane::detail
