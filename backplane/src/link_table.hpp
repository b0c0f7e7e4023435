#pragma once
// The links of one device: peer state -> mode bits (link_mode values, seen
// from the owning device). Two links live inline, so linking two fresh
// devices allocates nothing; a table that grows past 8 builds an
// open-addressing index so that a supervisor with 10k children still links
// and unlinks in O(1).

#include <backplane/detail/state.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

namespace backplane::detail {

struct link_entry {
  state_header* peer;  // counted: the table holds a reference
  std::uint8_t bits;
};

/// A vector of entries with two inline slots.
class link_vector {
 public:
  link_vector() noexcept = default;
  link_vector(link_vector&& o) noexcept { steal(o); }
  link_vector& operator=(link_vector&& o) noexcept {
    if (this != &o) {
      free_heap();
      steal(o);
    }
    return *this;
  }
  link_vector(link_vector const&) = delete;
  link_vector& operator=(link_vector const&) = delete;
  ~link_vector() { free_heap(); }

  [[nodiscard]] std::uint32_t size() const noexcept { return size_; }
  [[nodiscard]] link_entry* data() noexcept { return heap_ ? heap_ : inline_; }
  [[nodiscard]] link_entry const* data() const noexcept { return heap_ ? heap_ : inline_; }
  [[nodiscard]] link_entry& operator[](std::uint32_t i) noexcept { return data()[i]; }
  [[nodiscard]] link_entry const& operator[](std::uint32_t i) const noexcept { return data()[i]; }
  link_entry* begin() noexcept { return data(); }
  link_entry* end() noexcept { return data() + size_; }

  void push_back(link_entry e) {
    if (size_ == capacity()) grow();
    data()[size_++] = e;
  }
  void pop_back() noexcept { --size_; }
  void clear() noexcept { size_ = 0; }

 private:
  static constexpr std::uint32_t inline_capacity = 2;
  [[nodiscard]] std::uint32_t capacity() const noexcept {
    return heap_ ? heap_cap_ : inline_capacity;
  }
  void grow() {
    std::uint32_t cap = capacity() * 2;
    auto* fresh = new link_entry[cap];
    std::memcpy(fresh, data(), size_ * sizeof(link_entry));
    free_heap();
    heap_ = fresh;
    heap_cap_ = cap;
  }
  void free_heap() noexcept {
    delete[] heap_;
    heap_ = nullptr;
  }
  void steal(link_vector& o) noexcept {
    size_ = o.size_;
    heap_ = std::exchange(o.heap_, nullptr);
    heap_cap_ = o.heap_cap_;
    if (!heap_) std::memcpy(inline_, o.inline_, sizeof(inline_));
    o.size_ = 0;
  }

  link_entry* heap_ = nullptr;
  std::uint32_t size_ = 0;
  std::uint32_t heap_cap_ = 0;
  link_entry inline_[inline_capacity];
};

class link_table {
 public:
  /// The bits for `peer`, or null.
  [[nodiscard]] std::uint8_t* find(state_header* peer) noexcept {
    if (index_.empty()) {
      for (auto& e : entries_)
        if (e.peer == peer) return &e.bits;
      return nullptr;
    }
    std::size_t slot = probe(peer);
    return index_[slot] ? &entries_[index_[slot] - 1].bits : nullptr;
  }

  /// Inserts `peer` with no bits; the caller ORs bits in and, for a new
  /// entry, has already counted the reference. Precondition: not present.
  /// Strong guarantee: if it throws (std::bad_alloc), the table is as it was.
  std::uint8_t* insert(state_header* peer) {
    entries_.push_back(link_entry{peer, 0});
    try {
      if (!index_.empty()) {
        if ((entries_.size() + 1) * 2 > index_.size()) {
          rebuild();
        } else {
          index_[probe(peer)] = entries_.size();
        }
      } else if (entries_.size() > linear_limit) {
        rebuild();
      }
    } catch (...) {
      // rebuild builds the new index before it replaces the old one.
      entries_.pop_back();
      throw;
    }
    return &entries_[entries_.size() - 1].bits;
  }

  /// Removes `peer` if present and returns it (the caller releases the
  /// reference), or null.
  state_header* erase(state_header* peer) noexcept {
    std::uint32_t pos;
    if (index_.empty()) {
      pos = 0;
      while (pos < entries_.size() && entries_[pos].peer != peer) ++pos;
      if (pos == entries_.size()) return nullptr;
    } else {
      std::size_t slot = probe(peer);
      if (!index_[slot]) return nullptr;
      pos = index_[slot] - 1;
      remove_slot(slot);
    }
    std::uint32_t last = entries_.size() - 1;
    if (pos != last) {
      entries_[pos] = entries_[last];
      if (!index_.empty()) index_[probe(entries_[pos].peer)] = pos + 1;
    }
    entries_.pop_back();
    return peer;
  }

  [[nodiscard]] std::uint32_t size() const noexcept { return entries_.size(); }

  template <class F>
  void for_each(F&& f) {
    for (auto& e : entries_) f(e);
  }

  /// Moves every entry out, leaving the table empty.
  [[nodiscard]] link_vector take() noexcept {
    if (index_.capacity() != 0) std::vector<std::uint32_t>().swap(index_);
    return std::move(entries_);
  }

 private:
  static constexpr std::uint32_t linear_limit = 8;

  [[nodiscard]] std::size_t hash(state_header* p) const noexcept {
    auto v = reinterpret_cast<std::uintptr_t>(p) * 0x9E3779B97F4A7C15ULL;
    return static_cast<std::size_t>(v >> 32) & (index_.size() - 1);
  }
  /// The slot holding `peer`, or the empty slot where it would go.
  [[nodiscard]] std::size_t probe(state_header* peer) const noexcept {
    std::size_t mask = index_.size() - 1;
    for (std::size_t i = hash(peer);; i = (i + 1) & mask) {
      std::uint32_t v = index_[i];
      if (v == 0 || entries_[v - 1].peer == peer) return i;
    }
  }
  void rebuild() {
    std::size_t cap = 16;
    while (cap < entries_.size() * 4) cap *= 2;
    std::vector<std::uint32_t> fresh(cap, 0);  // may throw: the old index stays
    index_.swap(fresh);
    for (std::uint32_t i = 0; i < entries_.size(); ++i) index_[probe(entries_[i].peer)] = i + 1;
  }
  /// Backward-shift deletion keeps probe chains unbroken without tombstones.
  void remove_slot(std::size_t hole) noexcept {
    std::size_t mask = index_.size() - 1;
    index_[hole] = 0;
    for (std::size_t i = (hole + 1) & mask; index_[i]; i = (i + 1) & mask) {
      std::size_t home = hash(entries_[index_[i] - 1].peer);
      // Move i into the hole if its home is not in (hole, i].
      bool between = hole <= i ? (hole < home && home <= i) : (hole < home || home <= i);
      if (!between) {
        index_[hole] = index_[i];
        index_[i] = 0;
        hole = i;
      }
    }
  }

  link_vector entries_;
  std::vector<std::uint32_t> index_;  // 1-based positions in entries_; 0 = empty
};

}  // namespace backplane::detail
