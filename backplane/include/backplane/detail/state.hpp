#pragma once
// Not API. The shared state behind a device and its lines, as far as the
// header-only parts need to see it; the rest lives in src/device_state.hpp.

#include <backplane/detail/config_check.hpp>
#include <backplane/device_id.hpp>
#include <backplane/link_mode.hpp>
#include <backplane/message.hpp>

#include <boost/system/error_code.hpp>

#include <atomic>
#include <cstdint>
#include <optional>
#include <utility>

namespace boost::asio {
class execution_context;
}

namespace backplane::detail {

/// The head of every device state: what lines need inline (id, refcount).
struct state_header {
  explicit state_header(device_id i) noexcept : id(i) {}
  std::atomic<std::uint32_t> refs{1};
  device_id const id;
};

[[nodiscard]] state_header* create_state();
void destroy_state(state_header* s) noexcept;

inline void add_ref(state_header* s) noexcept { s->refs.fetch_add(1, std::memory_order_relaxed); }
/// True when the caller holds the only reference: then no line, link, wait or
/// work refers to the state, nobody else can reach it, and nobody can make a
/// new reference but the caller. The acquire pairs with the release of the
/// last other reference, so everything its holder did is visible.
[[nodiscard]] inline bool sole_ref(state_header const* s) noexcept {
  return s->refs.load(std::memory_order_acquire) == 1;
}
inline void release(state_header* s) noexcept {
  // The last reference needs no read-modify-write (one locked instruction less per device).
  if (sole_ref(s) || s->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy_state(s);
}

/// An owning (counted) pointer to a device state.
class state_ref {
 public:
  state_ref() noexcept = default;
  explicit state_ref(state_header* adopt) noexcept : s_(adopt) {}
  state_ref(state_ref const& o) noexcept : s_(o.s_) {
    if (s_) add_ref(s_);
  }
  state_ref(state_ref&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  state_ref& operator=(state_ref o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~state_ref() {
    if (s_) release(s_);
  }
  [[nodiscard]] state_header* get() const noexcept { return s_; }
  /// Gives up the reference without releasing it: the caller now holds it.
  [[nodiscard]] state_header* detach() noexcept { return std::exchange(s_, nullptr); }
  [[nodiscard]] state_header* operator->() const noexcept { return s_; }
  explicit operator bool() const noexcept { return s_ != nullptr; }

 private:
  state_header* s_ = nullptr;
};

/// A suspended receiver, type-erased. `complete` hands the completion to the
/// waiter's own executor (never runs it inline) and frees the node;
/// `destroy` frees it without running it (execution context shutdown).
struct waiter {
  using complete_fn = void (*)(waiter*, boost::system::error_code) noexcept;
  using destroy_fn = void (*)(waiter*) noexcept;
  complete_fn complete;
  destroy_fn destroy;
};

/// What wakes a waiter: a message, a message or a finished work, or only a
/// finished work.
enum class wake_on : std::uint8_t { message, message_or_work, work };

// --- compiled operations on a device state (src/device_state.cpp) ---

/// Disconnects `s` and releases the caller's reference to it (a device's, as
/// it becomes empty): one reference count update for both.
void disconnect_and_release(state_header* s, std::optional<fault> f) noexcept;
/// The same, telling monitors the exception behind the fault (`disconnected::cause`).
void disconnect_and_release(state_header* s, std::optional<fault> f,
                            std::exception_ptr const& cause) noexcept;
/// Between two devices of the caller's.
void link(state_header* self, state_header* other, link_mode mode);
/// `self_owned`: `self` is the caller's device (not reached through a line).
[[nodiscard]] boost::system::error_code link_lines(state_header* self, state_header* other,
                                                   link_mode mode, bool self_owned);
/// The same from the caller's device, taking over the caller's reference to
/// `other` (a line given up): it becomes the link's, or is released.
[[nodiscard]] boost::system::error_code link_line_adopting(state_header* self, state_ref other,
                                                           link_mode mode);
void unlink(state_header* self, state_header* other, link_mode mode) noexcept;
[[nodiscard]] bool send(state_header* s, message m);
[[nodiscard]] std::optional<message> try_receive(state_header* s);
[[nodiscard]] bool connected(state_header* s) noexcept;
[[nodiscard]] std::size_t link_count(state_header* s) noexcept;
[[nodiscard]] std::optional<link_mode> link_to(state_header* s, device_id other) noexcept;

/// Parks `w` until `on` is satisfied; completes it at once (posted) if it
/// already is, or with `already_started` if another waiter is parked. `ctx`
/// is the waiter's execution context: its shutdown destroys parked waiters
/// so that nothing leaks when a context dies with coroutines still waiting.
void arm(state_header* s, waiter* w, wake_on on, boost::asio::execution_context& ctx);
/// Makes sure that `arm` with this context allocates nothing (creates the
/// context's waiter_service the first time). May throw std::bad_alloc.
void prepare_wait(boost::asio::execution_context& ctx);
/// Where the core cannot go on and cannot tell anyone: writes
/// "backplane: fatal: <what>" to stderr and calls std::terminate. Used only
/// where docs/reliability.md says so (a notification that cannot be queued
/// or posted for lack of memory: dropping it would break the promise that
/// no notification is ever lost).
[[noreturn]] void fatal(char const* what) noexcept;
/// Completes `w` with operation_aborted if it is still parked on `s`.
void cancel(state_header* s, waiter* w) noexcept;
/// A work bound to `s` finished: wake the waiter, whatever it waits for.
void signal_work(state_header* s) noexcept;

}  // namespace backplane::detail
