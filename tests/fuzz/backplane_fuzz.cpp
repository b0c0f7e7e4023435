// Fuzz target: a byte string is a program of operations on a few devices
// (create, link/unlink through devices and lines in every mode, disconnect
// with every fault, drop, send, try_receive, async_receive, cancel, run),
// executed on one thread and checked after every step against a plain
// sequential model: links as seen from each side, mailboxes, and the
// outcome and order of every receive's completion. Any difference aborts.
//
// Built two ways: with libFuzzer (clang, -DBACKPLANE_FUZZ=ON) to search, and
// with replay_main.cpp in the ordinary test suite to replay the corpus.

#include "support/run_until_idle.hpp"

#include <backplane/backplane.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
using namespace backplane;
using boost::system::error_code;

constexpr std::size_t slots = 6;

[[noreturn]] void fail(std::string const& what) {
  std::fprintf(stderr, "backplane_fuzz: model mismatch: %s\n", what.c_str());
  std::abort();
}

#define FUZZ_CHECK(cond, what) \
  do {                         \
    if (!(cond)) fail(what);   \
  } while (0)

/// Reads the program: one byte at a time, zeros once it is exhausted.
struct reader {
  std::uint8_t const* p;
  std::size_t n;
  [[nodiscard]] bool more() const { return n > 0; }
  std::uint8_t byte() {
    if (!n) return 0;
    --n;
    return *p++;
  }
  std::size_t slot() { return byte() % slots; }
  link_mode mode() { return static_cast<link_mode>(1 + byte() % 3); }
};

/// One async_receive: its cancellation signal, and what its handler got.
struct receive_record {
  std::size_t slot;
  std::uint64_t incarnation;  // of the device in `slot` when the receive began
  asio::cancellation_signal signal;
  bool completed = false;
  error_code ec;
  std::optional<message> msg;
  // model
  bool cancel_requested = false;
  bool model_done = false;
};

/// A completion the model expects to be queued on the context, in order.
struct queued {
  receive_record* r;
  error_code ec;  // empty: deliver (pop the mailbox unless cancelled)
};

struct model_device {
  bool alive = false;
  std::uint64_t incarnation = 0;
  device_id id;
  std::map<std::size_t, std::uint8_t> links;  // slot -> bits seen from here
  std::deque<message> mailbox;
  receive_record* parked = nullptr;
};

class harness {
 public:
  harness() {
    for (std::size_t s = 0; s < slots; ++s) create(s);
  }

  void step(reader& in) {
    switch (in.byte() % 13) {
      case 0: create(in.slot()); break;
      case 1: device_link(in.slot(), in.slot(), in.mode(), true); break;
      case 2: device_link(in.slot(), in.slot(), in.mode(), false); break;
      case 3: device_link_line(in.slot(), in.slot(), in.mode(), true); break;
      case 4: device_link_line(in.slot(), in.slot(), in.mode(), false); break;
      case 5: line_link(in.slot(), in.slot(), in.mode(), true); break;
      case 6: line_link(in.slot(), in.slot(), in.mode(), false); break;
      case 7: end(in.slot(), in.byte() % 5); break;
      case 8: send(in.slot()); break;
      case 9: try_receive(in.slot()); break;
      case 10: async_receive(in.slot()); break;
      case 11: cancel(in.byte()); break;
      default: run(); break;
    }
    compare_links();
  }

  void finish() {
    run();
    for (std::size_t s = 0; s < slots; ++s)
      if (model_[s].alive) end(s, 0);
    run();
    for (auto& r : receives_) FUZZ_CHECK(r->completed, "a receive never completed");
  }

 private:
  void create(std::size_t s) {
    if (model_[s].alive) return;
    devices_[s] = device();
    lines_[s] = devices_[s].line();
    model_[s] = model_device{};
    model_[s].alive = true;
    model_[s].incarnation = ++incarnations_;
    model_[s].id = devices_[s].id();
  }

  static std::uint8_t bits(link_mode m) { return static_cast<std::uint8_t>(m); }

  void model_link(std::size_t a, std::size_t b, link_mode m) {
    model_[a].links[b] |= bits(m);
    model_[b].links[a] |= bits(reversed(m));
  }
  void model_unlink(std::size_t a, std::size_t b, link_mode m) {
    auto clear = [](model_device& d, std::size_t peer, std::uint8_t x) {
      auto it = d.links.find(peer);
      if (it == d.links.end()) return;
      it->second = static_cast<std::uint8_t>(it->second & ~x);
      if (!it->second) d.links.erase(it);
    };
    clear(model_[a], b, bits(m));
    clear(model_[b], a, bits(reversed(m)));
  }

  /// device::link / unlink between two owned devices.
  void device_link(std::size_t a, std::size_t b, link_mode m, bool link) {
    bool valid = model_[a].alive && model_[b].alive;
    try {
      if (link)
        devices_[a].link(devices_[b], m);
      else
        devices_[a].unlink(devices_[b], m);
      FUZZ_CHECK(valid, "device::link on an empty device did not throw");
      FUZZ_CHECK(a != b || !link, "device::link to itself did not throw");
    } catch (std::logic_error const& e) {
      bool self = a == b && link && dynamic_cast<std::invalid_argument const*>(&e);
      FUZZ_CHECK(!valid || self, std::string("unexpected logic_error: ") + e.what());
      return;
    }
    if (a == b) return;
    if (link)
      model_link(a, b, m);
    else
      model_unlink(a, b, m);
  }

  /// device::link_line / unlink_line to another device's line.
  void device_link_line(std::size_t a, std::size_t b, link_mode m, bool link) {
    if (!lines_[b].valid()) return;
    if (!model_[a].alive) {
      bool threw = false;
      try {
        if (link)
          (void)devices_[a].link_line(lines_[b], m);
        else
          devices_[a].unlink_line(lines_[b], m);
      } catch (std::logic_error const&) {
        threw = true;
      }
      FUZZ_CHECK(threw, "link_line on an empty device did not throw");
      return;
    }
    if (a == b) {
      bool threw = false;
      try {
        if (link)
          (void)devices_[a].link_line(lines_[b], m);
        else
          devices_[a].unlink_line(lines_[b], m);
      } catch (std::invalid_argument const&) {
        threw = true;
      }
      FUZZ_CHECK(threw || !link, "link_line to our own line did not throw");
      return;
    }
    if (!link) {
      devices_[a].unlink_line(lines_[b], m);
      if (model_[b].alive) model_unlink(a, b, m);
      return;
    }
    error_code ec = devices_[a].link_line(lines_[b], m);
    error_code want = model_[b].alive ? error_code{} : error_code(link_error::link_down);
    FUZZ_CHECK(ec == want, "device::link_line: got '" + ec.message() + "'");
    if (!ec) model_link(a, b, m);
  }

  /// line::link_line / unlink_line between two lines.
  void line_link(std::size_t a, std::size_t b, link_mode m, bool link) {
    if (!lines_[a].valid() || !lines_[b].valid()) return;
    if (a == b) {
      if (!link) return;
      bool threw = false;
      try {
        (void)lines_[a].link_line(lines_[b], m);
      } catch (std::invalid_argument const&) {
        threw = true;
      }
      FUZZ_CHECK(threw, "line::link_line to itself did not throw");
      return;
    }
    if (!link) {
      lines_[a].unlink_line(lines_[b], m);
      if (model_[a].alive && model_[b].alive) model_unlink(a, b, m);
      return;
    }
    error_code ec = lines_[a].link_line(lines_[b], m);
    error_code want = !model_[a].alive   ? error_code(link_error::device_down)
                      : !model_[b].alive ? error_code(link_error::link_down)
                                         : error_code{};
    FUZZ_CHECK(ec == want, "line::link_line: got '" + ec.message() + "'");
    if (!ec) model_link(a, b, m);
  }

  /// The model's half of a message arriving at a live device.
  void deliver(std::size_t s, message m) {
    auto& d = model_[s];
    d.mailbox.push_back(std::move(m));
    if (d.parked) queue_.push_back({std::exchange(d.parked, nullptr), {}});
  }

  void end(std::size_t s, unsigned how) {
    auto& d = model_[s];
    if (!d.alive) return;
    std::optional<fault> f;
    std::exception_ptr cause;
    switch (how) {
      case 0: devices_[s].disconnect(); break;
      case 1:
        f = fault::error();
        devices_[s].disconnect(*f);
        break;
      case 2:
        f = fault::error();
        cause = std::make_exception_ptr(std::runtime_error("fuzz"));
        devices_[s].disconnect(*f, cause);
        break;
      case 3:
        f = fault::cascade(device_id(7));
        devices_[s].disconnect(*f);
        break;
      default: {
        f = fault::drop();
        device gone(std::move(devices_[s]));
        break;
      }
    }
    d.alive = false;
    d.mailbox.clear();
    if (d.parked)
      queue_.push_back({std::exchange(d.parked, nullptr), asio::error::operation_aborted});
    for (auto [peer, b] : d.links) {
      model_[peer].links.erase(s);
      if ((b & 2U) && model_[peer].alive) deliver(peer, disconnected{d.id, f, cause});
    }
    d.links.clear();
  }

  void send(std::size_t s) {
    if (!lines_[s].valid()) return;
    message m = backplane::shutdown{device_id(++sent_)};
    bool ok = lines_[s].send(m);
    FUZZ_CHECK(ok == model_[s].alive, "send: wrong result");
    if (ok) deliver(s, std::move(m));
  }

  void try_receive(std::size_t s) {
    if (!model_[s].alive) return;
    auto got = devices_[s].try_receive();
    auto& box = model_[s].mailbox;
    std::optional<message> want;
    if (!box.empty()) {
      want = std::move(box.front());
      box.pop_front();
    }
    FUZZ_CHECK(got == want, "try_receive: wrong message");
  }

  void async_receive(std::size_t s) {
    if (!model_[s].alive) return;
    receives_.push_back(std::make_unique<receive_record>());
    receive_record* r = receives_.back().get();
    r->slot = s;
    r->incarnation = model_[s].incarnation;
    devices_[s].async_receive(asio::bind_cancellation_slot(
        r->signal.slot(), asio::bind_executor(ctx_, [r](error_code ec, message m) {
          r->completed = true;
          r->ec = ec;
          if (!ec) r->msg = std::move(m);
        })));
    auto& d = model_[s];
    if (d.parked) {
      queue_.push_back({r, asio::error::already_started});
    } else if (!d.mailbox.empty()) {
      queue_.push_back({r, {}});
    } else {
      d.parked = r;
    }
  }

  void cancel(std::uint8_t which) {
    if (receives_.empty()) return;
    receive_record* r = receives_[which % receives_.size()].get();
    r->signal.emit(asio::cancellation_type::terminal);
    if (r->model_done) return;  // the slot was cleared: nothing happens
    r->cancel_requested = true;
    auto& d = model_[r->slot];
    if (d.parked == r) {
      d.parked = nullptr;
      queue_.push_back({r, asio::error::operation_aborted});
    }
  }

  void run() {
    test::run_until_idle(ctx_);
    for (auto& q : queue_) {
      receive_record* r = q.r;
      error_code ec = q.ec;
      std::optional<message> want;
      if (!ec && r->cancel_requested) ec = asio::error::operation_aborted;
      if (!ec) {
        // A device that has since been replaced in its slot ended with an
        // empty mailbox, for good.
        auto& box = model_[r->slot].mailbox;
        if (model_[r->slot].incarnation != r->incarnation || box.empty()) {
          ec = asio::error::operation_aborted;
        } else {
          want = std::move(box.front());
          box.pop_front();
        }
      }
      r->model_done = true;
      FUZZ_CHECK(r->completed, "a receive the model completed did not complete");
      FUZZ_CHECK(r->ec == ec,
                 "receive: got '" + r->ec.message() + "', want '" + ec.message() + "'");
      FUZZ_CHECK(r->msg == want, "receive: wrong message");
    }
    queue_.clear();
    for (auto& r : receives_)
      FUZZ_CHECK(r->completed == r->model_done, "a receive completed that the model did not");
  }

  void compare_links() {
    for (std::size_t s = 0; s < slots; ++s) {
      auto const& d = model_[s];
      FUZZ_CHECK(devices_[s].valid() == d.alive, "device validity");
      if (!d.alive) continue;
      FUZZ_CHECK(devices_[s].link_count() == d.links.size(), "link_count");
      for (auto [peer, b] : d.links) {
        auto got = devices_[s].link_to(model_[peer].id);
        FUZZ_CHECK(got && static_cast<std::uint8_t>(*got) == b, "link_to");
      }
    }
  }

  // Destroyed bottom-up: devices before the context their waiters post to,
  // the context (and any handler it still holds) before the records.
  std::vector<std::unique_ptr<receive_record>> receives_;
  asio::io_context ctx_;
  std::array<device, slots> devices_;
  std::array<line, slots> lines_;
  std::array<model_device, slots> model_{};
  std::vector<queued> queue_;
  std::uint64_t sent_ = 0;
  std::uint64_t incarnations_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  if (size > 4096) return -1;  // longer programs add time, not coverage
  {
    harness h;
    reader in{data, size};
    while (in.more()) h.step(in);
    h.finish();
  }
  return 0;
}
