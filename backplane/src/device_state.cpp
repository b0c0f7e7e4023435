// The backplane's one mechanism: device states, their links and mailboxes.
//
// Locking: each state has a spin_mutex. Only `link`/`unlink` hold two, taken
// in address order; everything else holds one at a time, and waiters are
// completed (posted) after the lock is released.
//
// A locked instruction costs about 5 ns on the project's machine, more than a
// hundred plain ones, so the owner's calls skip what they can prove useless:
// a state whose only reference is the caller's device (sole_ref) is reachable
// by nobody else (every line, link entry, wait and bound work holds a
// reference), so it is read and written without its lock, its reference
// count is updated with plain stores, and its disconnect just frees it. A
// link holds a reference on each side, released by the disconnect that
// removes it together with the disconnecting device's own (release_n).

#include "device_state.hpp"

#include "waiter_service.hpp"

#include <backplane/link_error.hpp>

#include <boost/asio/error.hpp>

#include <cstdio>
#include <exception>
#include <mutex>
#include <stdexcept>

namespace backplane::detail {

namespace {

constexpr std::uint8_t notify_bit = static_cast<std::uint8_t>(link_mode::notify);

bool wakes(wake_on waiting_for, bool message) noexcept {
  return message ? waiting_for != wake_on::work : waiting_for != wake_on::message;
}

/// Takes the parked waiter if it waits for this kind of event.
waiter* take_waiter(device_state* s, bool message) noexcept {
  if (s->parked && wakes(s->waiting_for, message)) return std::exchange(s->parked, nullptr);
  return nullptr;
}

void complete(waiter* w, boost::system::error_code ec = {}) noexcept {
  if (w) w->complete(w, ec);
}

/// Locks two distinct states in address order, or only the one of them that
/// another thread may reach (see sole_ref): a device linked to a fresh device
/// of its own owner's takes no lock at all.
class pair_lock {
 public:
  pair_lock(device_state* a, bool lock_a, device_state* b, bool lock_b) noexcept
      : first_(lock_a ? &a->mu : nullptr), second_(lock_b ? &b->mu : nullptr) {
    if (first_ && second_ && second_ < first_) std::swap(first_, second_);
    if (first_) first_->lock();
    if (second_) second_->lock();
  }
  ~pair_lock() {
    if (second_) second_->unlock();
    if (first_) first_->unlock();
  }
  pair_lock(pair_lock const&) = delete;
  pair_lock& operator=(pair_lock const&) = delete;

 private:
  spin_mutex* first_;
  spin_mutex* second_;
};

/// Counts the reference a new link entry holds on `s`. `alone`: the caller
/// holds the only other reference (sole_ref), so nobody else reads or writes
/// the count and a plain store does what a locked increment would.
void count_link_ref(device_state* s, bool alone) noexcept {
  if (alone) {
    s->refs.store(s->refs.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  } else {
    add_ref(s);
  }
}

/// Clears `bits`; returns the peer if its entry went away (release it).
state_header* remove_bits(device_state* s, device_state* peer, std::uint8_t bits) noexcept {
  std::uint8_t* b = s->links.find(peer);
  if (!b) return nullptr;
  *b &= static_cast<std::uint8_t>(~bits);
  return *b == 0 ? s->links.erase(peer) : nullptr;
}

[[noreturn, gnu::noinline, gnu::cold]] void throw_self_link(char const* what) {
  throw std::invalid_argument(std::string("backplane: ") + what +
                              ": cannot link a device to itself; link it to another device");
}

inline void check_distinct(state_header* a, state_header* b, char const* what) {
  if (a == b) [[unlikely]]
    throw_self_link(what);
}

/// Both halves or neither: if the second half cannot be added (std::bad_alloc
/// growing b's table), the first is undone, so that no link is one-sided. The
/// references are counted only once both entries exist. Both states are
/// locked, or alone (`a_alone`, `b_alone`: see count_link_ref). `b_given`:
/// the caller hands over a reference to b for a's new entry; returns whether
/// it was used (else the caller releases it).
bool do_link(device_state* a, bool a_alone, device_state* b, bool b_alone, link_mode mode,
             bool b_given = false) {
  auto bits = static_cast<std::uint8_t>(mode);
  auto back = static_cast<std::uint8_t>(reversed(mode));
  std::uint8_t* ab = a->links.find(b);
  std::uint8_t* ba = b->links.find(a);
  bool const new_ab = ab == nullptr;
  bool const new_ba = ba == nullptr;
  if (new_ab) ab = a->links.insert(b);  // may throw: nothing has changed yet
  if (new_ba) {
    try {
      ba = b->links.insert(a);
    } catch (...) {
      if (new_ab) (void)a->links.erase(b);  // its reference was not counted yet
      throw;
    }
  }
  *ab |= bits;
  *ba |= back;
  if (new_ab && !b_given) count_link_ref(b, b_alone);
  if (new_ba) count_link_ref(a, a_alone);
  return new_ab && b_given;
}

/// Releases `n` references to `s` at once.
void release_n(device_state* s, std::uint32_t n) noexcept {
  if (s->refs.load(std::memory_order_acquire) == n ||
      s->refs.fetch_sub(n, std::memory_order_acq_rel) == n)
    destroy_state(s);
}

}  // namespace

state_header* create_state() { return new device_state(device_id::next()); }

void destroy_state(state_header* s) noexcept { delete full(s); }

namespace {

/// Nobody else can reach `s`: every link, line, wait and bound work holds a
/// reference, and no context lists it. So it has no link to tear down and no
/// waiter, and nobody can see it disconnect: it can just go.
bool alone(device_state* s) noexcept {
  return sole_ref(s) && s->service.load(std::memory_order_acquire) == nullptr;
}

/// disconnect_and_release when others may see `s`; `cause` may be null.
[[gnu::noinline]] void disconnect_shared(device_state* s, std::optional<fault> const& f,
                                         std::exception_ptr const* cause) noexcept {
  // Most devices have one link: it is copied out, a longer table is taken whole.
  link_entry one{};
  link_vector many;
  std::uint32_t count = 0;
  waiter* w = nullptr;
  bool was_connected;
  {
    std::lock_guard lock(s->mu);
    was_connected = s->connected;
    if (was_connected) {
      s->connected = false;
      count = s->links.size();
      if (count == 1) {
        one = s->links.take_single();
      } else if (count != 0) {
        s->links.take(many);
      }
      w = std::exchange(s->parked, nullptr);
      s->inbox.clear();
    }
  }
  if (!was_connected) {
    release_n(s, 1);
    return;
  }
  waiter_service::delist(s);
  // A callback-style receive left pending by an owner that now disconnects.
  complete(w, boost::asio::error::operation_aborted);
  // The caller's reference, and each peer's on s as its entry goes: released
  // together at the end.
  std::uint32_t ours = 1;
  link_entry* const first = count == 1 ? &one : many.begin();
  for (link_entry* it = first; it != first + count; ++it) {
    link_entry const& e = *it;
    device_state* peer = full(e.peer);
    waiter* woken = nullptr;
    {
      std::lock_guard lock(peer->mu);
      if (peer->links.erase(s)) ++ours;
      if ((e.bits & notify_bit) && peer->connected) {
        // A second pending message grows the mailbox; failing, this
        // notification could only be lost: the documented end.
        try {
          disconnected note{s->id, f};
          if (cause && *cause) note.cause = *cause;
          peer->inbox.emplace(std::move(note));
        } catch (...) {
          fatal("out of memory queueing a disconnect notification");
        }
        woken = take_waiter(peer, true);
      }
    }
    complete(woken);
    release(peer);
  }
  release_n(s, ours);
}

}  // namespace

void disconnect_and_release(state_header* h, std::optional<fault> f) noexcept {
  device_state* s = full(h);
  if (alone(s)) {
    destroy_state(s);
  } else {
    disconnect_shared(s, f, nullptr);
  }
}

void disconnect_and_release(state_header* h, std::optional<fault> f,
                            std::exception_ptr const& cause) noexcept {
  device_state* s = full(h);
  if (alone(s)) {
    destroy_state(s);
  } else {
    disconnect_shared(s, f, &cause);
  }
}

void link(state_header* self, state_header* other, link_mode mode) {
  check_distinct(self, other, "device::link");
  device_state* a = full(self);
  device_state* b = full(other);
  // Both are devices of the caller's: one it holds alone no other thread can touch.
  bool const a_alone = sole_ref(a);
  bool const b_alone = sole_ref(b);
  pair_lock lock(a, !a_alone, b, !b_alone);
  do_link(a, a_alone, b, b_alone, mode);
}

boost::system::error_code link_lines(state_header* self, state_header* other, link_mode mode,
                                     bool self_owned) {
  check_distinct(self, other, "link_line");
  device_state* a = full(self);
  device_state* b = full(other);
  // Through a line, a sole reference proves nothing: other threads may call
  // the same line object (its members are thread-safe). Only a device is ours.
  bool const a_alone = self_owned && sole_ref(a);
  pair_lock lock(a, !a_alone, b, true);
  if (!a->connected) return link_error::device_down;
  if (!b->connected) return link_error::link_down;
  do_link(a, a_alone, b, false, mode);
  return {};
}

boost::system::error_code link_line_adopting(state_header* self, state_ref other, link_mode mode) {
  check_distinct(self, other.get(), "link_line");
  device_state* a = full(self);
  device_state* b = full(other.get());
  bool const a_alone = sole_ref(a);  // a is the caller's device
  boost::system::error_code ec;
  bool used = false;
  {
    pair_lock lock(a, !a_alone, b, true);
    if (!a->connected) {
      ec = link_error::device_down;
    } else if (!b->connected) {
      ec = link_error::link_down;
    } else {
      used = do_link(a, a_alone, b, false, mode, true);
    }
  }
  // A new entry keeps the reference; otherwise it goes with `other`, after
  // the locks (it may be the last).
  if (used) (void)other.detach();
  return ec;
}

void unlink(state_header* self, state_header* other, link_mode mode) noexcept {
  if (self == other) return;
  device_state* a = full(self);
  device_state* b = full(other);
  state_header* gone_a;
  state_header* gone_b;
  {
    pair_lock lock(a, true, b, true);
    gone_a = remove_bits(a, b, static_cast<std::uint8_t>(mode));
    gone_b = remove_bits(b, a, static_cast<std::uint8_t>(reversed(mode)));
  }
  if (gone_a) release(gone_a);
  if (gone_b) release(gone_b);
}

bool send(state_header* h, message m) {
  device_state* s = full(h);
  waiter* w;
  {
    std::lock_guard lock(s->mu);
    if (!s->connected) return false;
    s->inbox.push(std::move(m));
    w = take_waiter(s, true);
  }
  complete(w);
  return true;
}

std::optional<message> try_receive(state_header* h) {
  device_state* s = full(h);
  // Only the owner receives; alone, nobody can send to it concurrently.
  if (sole_ref(s)) return s->inbox.pop();
  std::lock_guard lock(s->mu);
  return s->inbox.pop();
}

bool connected(state_header* h) noexcept {
  device_state* s = full(h);
  std::lock_guard lock(s->mu);
  return s->connected;
}

std::size_t link_count(state_header* h) noexcept {
  device_state* s = full(h);
  std::lock_guard lock(s->mu);
  return s->links.size();
}

std::optional<link_mode> link_to(state_header* h, device_id other) noexcept {
  device_state* s = full(h);
  std::lock_guard lock(s->mu);
  // Linear: an inspection aid, not a hot path.
  std::optional<link_mode> found;
  s->links.for_each([&](link_entry const& e) {
    if (e.peer->id == other) found = static_cast<link_mode>(e.bits);
  });
  return found;
}

void prepare_wait(boost::asio::execution_context& ctx) { (void)waiter_service::of(ctx); }

void fatal(char const* what) noexcept {
  std::fprintf(stderr, "backplane: fatal: %s\n", what);
  std::fflush(stderr);
  std::terminate();
}

void arm(state_header* h, waiter* w, wake_on on, boost::asio::execution_context& ctx) {
  device_state* s = full(h);
  waiter_service& svc = waiter_service::of(ctx);
  // Listed before the waiter can be seen: once it is parked, a sender on
  // another thread may complete it and its owner may resume, disconnect and
  // free this state while we would still be listing it.
  if (s->service.load(std::memory_order_acquire) != &svc) svc.enlist(s);
  bool ready;
  boost::system::error_code ec;
  {
    std::lock_guard lock(s->mu);
    if (s->parked) {
      // One wait at a time: replacing the parked waiter would lose it for ever.
      ready = true;
      ec = boost::asio::error::already_started;
    } else {
      bool message_ready = on != wake_on::work && !s->inbox.empty();
      bool work_ready = on != wake_on::message && s->work_signal;
      ready = message_ready || work_ready || !s->connected;
      if (work_ready) s->work_signal = false;
      if (!ready) {
        s->parked = w;
        s->waiting_for = on;
      }
    }
  }
  if (ready) complete(w, ec);
}

void cancel(state_header* h, waiter* w) noexcept {
  device_state* s = full(h);
  bool mine;
  {
    std::lock_guard lock(s->mu);
    mine = s->parked == w;
    if (mine) s->parked = nullptr;
  }
  if (mine) complete(w, boost::asio::error::operation_aborted);
}

void signal_work(state_header* h) noexcept {
  device_state* s = full(h);
  waiter* w;
  {
    std::lock_guard lock(s->mu);
    s->work_signal = true;
    w = take_waiter(s, false);
    if (w) s->work_signal = false;
  }
  complete(w);
}

}  // namespace backplane::detail
