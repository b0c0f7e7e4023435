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

namespace backplane::detail {

struct link_entry {
  state_header* peer;  // counted: the table holds a reference
  std::uint8_t bits;
};

/// A vector of entries with two inline slots. `data_` points at the inline
/// slots or at the heap, so that reaching an entry costs no branch.
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
  ~link_vector() {
    if (on_heap()) delete[] data_;
  }

  [[nodiscard]] std::uint32_t size() const noexcept { return size_; }
  [[nodiscard]] link_entry* data() noexcept { return data_; }
  [[nodiscard]] link_entry const* data() const noexcept { return data_; }
  [[nodiscard]] link_entry& operator[](std::uint32_t i) noexcept { return data_[i]; }
  [[nodiscard]] link_entry const& operator[](std::uint32_t i) const noexcept { return data_[i]; }
  link_entry* begin() noexcept { return data_; }
  link_entry* end() noexcept { return data_ + size_; }

  void push_back(link_entry e) {
    if (size_ == capacity_) grow();
    data_[size_++] = e;
  }
  [[nodiscard]] bool has_room() const noexcept { return size_ != capacity_; }
  void push_back_unchecked(link_entry e) noexcept { data_[size_++] = e; }
  void pop_back() noexcept { --size_; }
  void clear() noexcept { size_ = 0; }

 private:
  static constexpr std::uint32_t inline_capacity = 2;
  [[nodiscard]] bool on_heap() const noexcept { return data_ != inline_; }
  void grow() {
    std::uint32_t cap = capacity_ * 2;
    auto* fresh = new link_entry[cap];
    std::memcpy(fresh, data_, size_ * sizeof(link_entry));
    free_heap();
    data_ = fresh;
    capacity_ = cap;
  }
  void free_heap() noexcept {
    if (on_heap()) delete[] data_;
    data_ = inline_;
    capacity_ = inline_capacity;
  }
  void steal(link_vector& o) noexcept {
    size_ = o.size_;
    capacity_ = o.capacity_;
    if (o.on_heap()) {
      data_ = o.data_;
    } else {
      std::memcpy(inline_, o.inline_, sizeof(inline_));
      data_ = inline_;
    }
    o.data_ = o.inline_;
    o.capacity_ = inline_capacity;
    o.size_ = 0;
  }

  link_entry* data_ = inline_;
  std::uint32_t size_ = 0;
  std::uint32_t capacity_ = inline_capacity;
  link_entry inline_[inline_capacity];
};

class link_table {
 public:
  /// The bits for `peer`, or null.
  [[nodiscard]] std::uint8_t* find(state_header* peer) noexcept {
    if (!index_) {
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
    // Inline: a free slot of a table without an index (a device's first links).
    if (!index_ && entries_.has_room()) {
      entries_.push_back_unchecked(link_entry{peer, 0});
      return &entries_[entries_.size() - 1].bits;
    }
    return insert_growing(peer);
  }

  /// Removes `peer` if present and returns it (the caller releases the
  /// reference), or null.
  state_header* erase(state_header* peer) noexcept {
    if (index_) return erase_indexed(peer);
    std::uint32_t const n = entries_.size();
    std::uint32_t pos = 0;
    while (pos < n && entries_[pos].peer != peer) ++pos;
    if (pos == n) return nullptr;
    entries_[pos] = entries_[n - 1];
    entries_.pop_back();
    return peer;
  }

  [[nodiscard]] std::uint32_t size() const noexcept { return entries_.size(); }

  template <class F>
  void for_each(F&& f) {
    for (auto& e : entries_) f(e);
  }

  /// Removes and returns the only entry. Precondition: size() == 1.
  [[nodiscard]] link_entry take_single() noexcept {
    link_entry e = entries_[0];
    entries_.clear();
    if (index_) {
      index_.reset();
      index_size_ = 0;
    }
    return e;
  }

  /// Moves every entry into `out` (empty), leaving the table empty.
  void take(link_vector& out) noexcept {
    if (index_) {
      index_.reset();
      index_size_ = 0;
    }
    out = std::move(entries_);
  }

 private:
  static constexpr std::uint32_t linear_limit = 8;

  [[gnu::noinline]] std::uint8_t* insert_growing(state_header* peer) {
    entries_.push_back(link_entry{peer, 0});
    try {
      if (index_) {
        if ((entries_.size() + 1) * 2 > index_size_) {
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

  [[gnu::noinline]] state_header* erase_indexed(state_header* peer) noexcept {
    std::size_t slot = probe(peer);
    if (!index_[slot]) return nullptr;
    std::uint32_t pos = index_[slot] - 1;
    remove_slot(slot);
    std::uint32_t last = entries_.size() - 1;
    if (pos != last) {
      entries_[pos] = entries_[last];
      index_[probe(entries_[pos].peer)] = pos + 1;
    }
    entries_.pop_back();
    return peer;
  }

  [[nodiscard]] std::size_t hash(state_header* p) const noexcept {
    auto v = reinterpret_cast<std::uintptr_t>(p) * 0x9E3779B97F4A7C15ULL;
    return static_cast<std::size_t>(v >> 32) & (index_size_ - 1);
  }
  /// The slot holding `peer`, or the empty slot where it would go.
  [[nodiscard]] std::size_t probe(state_header* peer) const noexcept {
    std::size_t mask = index_size_ - 1;
    for (std::size_t i = hash(peer);; i = (i + 1) & mask) {
      std::uint32_t v = index_[i];
      if (v == 0 || entries_[v - 1].peer == peer) return i;
    }
  }
  void rebuild() {
    std::size_t cap = 16;
    while (cap < entries_.size() * 4) cap *= 2;
    auto fresh = std::make_unique<std::uint32_t[]>(cap);  // zeroed; may throw: the old index stays
    index_ = std::move(fresh);
    index_size_ = cap;
    for (std::uint32_t i = 0; i < entries_.size(); ++i) index_[probe(entries_[i].peer)] = i + 1;
  }
  /// Backward-shift deletion keeps probe chains unbroken without tombstones.
  void remove_slot(std::size_t hole) noexcept {
    std::size_t mask = index_size_ - 1;
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
  std::unique_ptr<std::uint32_t[]> index_;  // 1-based positions in entries_; 0 = empty
  std::size_t index_size_ = 0;              // a power of two, or 0 without an index
};

}  // namespace backplane::detail
