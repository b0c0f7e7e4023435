// The backplane's one mechanism: device states, their links and mailboxes.
//
// Locking: each state has a spin_mutex. Only `link`/`unlink` hold two, taken
// in address order; everything else holds one at a time, and waiters are
// completed (posted) after the lock is released.

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

/// Locks two distinct states in address order.
class pair_lock {
 public:
  pair_lock(device_state* a, device_state* b) noexcept
      : first_(a < b ? a : b), second_(a < b ? b : a) {
    first_->mu.lock();
    second_->mu.lock();
  }
  ~pair_lock() {
    second_->mu.unlock();
    first_->mu.unlock();
  }
  pair_lock(pair_lock const&) = delete;
  pair_lock& operator=(pair_lock const&) = delete;

 private:
  device_state* first_;
  device_state* second_;
};

void add_bits(device_state* s, device_state* peer, std::uint8_t bits) {
  std::uint8_t* b = s->links.find(peer);
  if (!b) {
    b = s->links.insert(peer);
    add_ref(peer);
  }
  *b |= bits;
}

/// Clears `bits`; returns the peer if its entry went away (release it).
state_header* remove_bits(device_state* s, device_state* peer, std::uint8_t bits) noexcept {
  std::uint8_t* b = s->links.find(peer);
  if (!b) return nullptr;
  *b &= static_cast<std::uint8_t>(~bits);
  return *b == 0 ? s->links.erase(peer) : nullptr;
}

void check_distinct(state_header* a, state_header* b, char const* what) {
  if (a == b)
    throw std::invalid_argument(std::string("backplane: ") + what +
                                ": cannot link a device to itself; link it to another device");
}

/// Both halves or neither: if the second half cannot be added (std::bad_alloc
/// growing b's table), the first is undone, so that no link is one-sided.
void do_link(device_state* a, device_state* b, link_mode mode) {
  auto bits = static_cast<std::uint8_t>(mode);
  auto back = static_cast<std::uint8_t>(reversed(mode));
  std::uint8_t const* had = a->links.find(b);
  std::uint8_t const before = had ? *had : 0;
  add_bits(a, b, bits);
  try {
    add_bits(b, a, back);
  } catch (...) {
    if (before != 0) {
      *a->links.find(b) = before;
    } else if (state_header* gone = a->links.erase(b)) {
      release(gone);  // b is alive (the caller holds it): never the last reference
    }
    throw;
  }
}

}  // namespace

state_header* create_state() { return new device_state(device_id::next()); }

void destroy_state(state_header* s) noexcept { delete full(s); }

void disconnect(state_header* h, std::optional<fault> f, std::exception_ptr const& cause) noexcept {
  device_state* s = full(h);
  link_vector links;
  waiter* w = nullptr;
  {
    std::lock_guard lock(s->mu);
    if (!s->connected) return;
    s->connected = false;
    if (s->links.size() != 0) links = s->links.take();
    w = std::exchange(s->parked, nullptr);
    s->inbox.clear();
  }
  waiter_service::delist(s);
  // A callback-style receive left pending by an owner that now disconnects.
  complete(w, boost::asio::error::operation_aborted);
  for (link_entry& e : links) {
    device_state* peer = full(e.peer);
    waiter* woken = nullptr;
    state_header* our_entry;
    {
      std::lock_guard lock(peer->mu);
      our_entry = peer->links.erase(s);
      if ((e.bits & notify_bit) && peer->connected) {
        // A second pending message grows the mailbox; failing, this
        // notification could only be lost: the documented end.
        try {
          peer->inbox.push(disconnected{s->id, f, cause});
        } catch (...) {
          fatal("out of memory queueing a disconnect notification");
        }
        woken = take_waiter(peer, true);
      }
    }
    complete(woken);
    if (our_entry) release(our_entry);
    release(peer);
  }
}

void link(state_header* self, state_header* other, link_mode mode) {
  check_distinct(self, other, "device::link");
  device_state* a = full(self);
  device_state* b = full(other);
  pair_lock lock(a, b);
  do_link(a, b, mode);
}

boost::system::error_code link_lines(state_header* self, state_header* other, link_mode mode) {
  check_distinct(self, other, "link_line");
  device_state* a = full(self);
  device_state* b = full(other);
  pair_lock lock(a, b);
  if (!a->connected) return link_error::device_down;
  if (!b->connected) return link_error::link_down;
  do_link(a, b, mode);
  return {};
}

void unlink(state_header* self, state_header* other, link_mode mode) noexcept {
  if (self == other) return;
  device_state* a = full(self);
  device_state* b = full(other);
  state_header* gone_a;
  state_header* gone_b;
  {
    pair_lock lock(a, b);
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
