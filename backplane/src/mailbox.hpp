#pragma once
// A device's FIFO of messages. Most devices hear at most one message in
// their life, so the first lives inline and a vector only appears when
// messages pile up.

#include <backplane/message.hpp>

#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

namespace backplane::detail {

class mailbox {
 public:
  [[nodiscard]] bool empty() const noexcept { return !head_; }

  void push(message m) { emplace(std::move(m)); }

  /// Builds the message where it will wait (a disconnect notification is
  /// moved once, not three times).
  template <class M>
  void emplace(M&& m) {
    if (!head_) {
      head_.emplace(std::forward<M>(m));
    } else {
      rest_.emplace_back(std::forward<M>(m));
    }
  }

  [[nodiscard]] std::optional<message> pop() {
    if (!head_) return std::nullopt;
    std::optional<message> out(std::in_place, std::move(*head_));
    if (rest_.empty()) [[likely]] {
      head_.reset();
    } else {
      refill();
    }
    return out;
  }

  void clear() noexcept {
    head_.reset();
    if (rest_.capacity() != 0) std::vector<message>().swap(rest_);
    next_ = 0;
  }

 private:
  /// Moves the next waiting message into the head.
  void refill() {
    *head_ = std::move(rest_[next_++]);
    if (next_ == rest_.size()) {
      rest_.clear();
      next_ = 0;
    }
  }

  std::optional<message> head_;
  std::vector<message> rest_;
  std::size_t next_ = 0;
};

}  // namespace backplane::detail
