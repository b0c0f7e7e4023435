#pragma once
// A supervisor test bench: one io_context driven by hand, a manual clock,
// a muted logger, every event recorded as a value, synchronous wrappers for
// the runtime API, and "puppets": children that end the way a test tells
// them to, logging when they start and stop.

#include "support/run_until_idle.hpp"

#include <backplane/backplane.hpp>
#include <backplane/supervisor.hpp>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace backplane::test {

using namespace std::chrono_literals;

/// A work for manage that never finishes by itself.
inline boost::asio::awaitable<boost::system::result<void, int>> forever_result() {
  co_await forever();
  co_return boost::system::result<void, int>();
}

/// How a puppet ends when told to.
enum class ending {
  clean,      ///< its run returns normally
  error,      ///< its work returns an error under manage (fault::error)
  exception,  ///< its run throws std::runtime_error("boom")
};

/// One incarnation of a puppet.
struct puppet_state {
  explicit puppet_state(boost::asio::any_io_executor ex)
      : timer(std::move(ex), boost::asio::steady_timer::time_point::max()) {}
  boost::asio::steady_timer timer;
  ending how = ending::clean;
  backplane::line line;
  std::uint64_t incarnation = 0;
  bool running = true;
  bool told = false;  // ended by puppets::end, not cancelled
};

/// How a puppet is written: a run that co_awaits part_manage itself, or a
/// managed work the start function returns for the supervisor to manage.
enum class puppet_form { run, managed_work };

/// Children whose lives the test controls. Log lines: "start a", then, in
/// the run form, one of "stop a" (asked to stop: shutdown request), "kill a"
/// (cancelled), "crash a" (faulted under manage: error or cascade), "end a"
/// (told to end cleanly, by an error or by throwing). A managed work cannot
/// tell a shutdown from a cascade or a kill (the supervisor cancels it for
/// all three): it logs "cancel a" for them, and "end a" when told to end.
class puppets {
 public:
  std::vector<std::string> log;
  std::map<std::string, std::shared_ptr<puppet_state>> current;
  std::map<std::string, int> starts;
  puppet_form form = puppet_form::run;

  /// A puppet child. If `depends_on` is given, the puppet monitors it (so
  /// its fault cascades into the puppet).
  child_spec spec(std::string id, restart_type restart = restart_type::permanent,
                  std::optional<backplane::line> depends_on = std::nullopt) {
    if (form == puppet_form::managed_work) {
      return worker(
          id,
          [this, id, depends_on](child_context& c) -> start_result {
            auto p = begin(c, id, depends_on);
            return managed_life(std::move(p), this, id);
          },
          restart);
    }
    return worker(
        id,
        [this, id, depends_on](child_context& c) -> boost::asio::awaitable<void> {
          return life(c, id, depends_on);
        },
        restart);
  }

  /// Ends the current incarnation of `id` the way given.
  void end(std::string const& id, ending how) {
    auto& p = current.at(id);
    ASSERT_TRUE(p->running) << id << " is not running";
    p->how = how;
    p->told = true;
    p->timer.cancel();
  }

  /// What the log says when `id` was stopped (shutdown request), crashed by
  /// a cascade, or ended by an error under manage, in the current form.
  [[nodiscard]] std::string stopped(std::string const& id) const {
    return (form == puppet_form::run ? "stop " : "cancel ") + id;
  }
  [[nodiscard]] std::string cascaded(std::string const& id) const {
    return (form == puppet_form::run ? "crash " : "cancel ") + id;
  }
  [[nodiscard]] std::string errored(std::string const& id) const {
    return (form == puppet_form::run ? "crash " : "end ") + id;
  }

  [[nodiscard]] backplane::line line(std::string const& id) const { return current.at(id)->line; }
  [[nodiscard]] bool running(std::string const& id) const {
    auto it = current.find(id);
    return it != current.end() && it->second->running;
  }
  void clear_log() { log.clear(); }

 private:
  static boost::asio::awaitable<boost::system::result<void, int>> wait(
      std::shared_ptr<puppet_state> p) {
    (void)co_await p->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (p->how == ending::error) co_return boost::system::result<void, int>(7);
    co_return boost::system::result<void, int>();
  }

  std::shared_ptr<puppet_state> begin(child_context& c, std::string const& id,
                                      std::optional<backplane::line> const& dep) {
    auto p = std::make_shared<puppet_state>(c.executor);
    p->line = c.device.line();
    p->incarnation = c.incarnation;
    current[id] = p;
    ++starts[id];
    log.push_back("start " + id);
    // A dependency that is already gone (a restart after a cascade) is not linked.
    if (dep) (void)c.device.link_line(*dep, link_mode::monitor);
    return p;
  }

  static boost::asio::awaitable<boost::system::result<void, int>> managed_life(
      std::shared_ptr<puppet_state> p, puppets* self, std::string id) {
    auto [ec] = co_await p->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    p->running = false;
    if (!p->told) {
      // Cancelled by the supervisor: what real code sees is the exception.
      self->log.push_back("cancel " + id);
      throw boost::system::system_error(ec);
    }
    self->log.push_back("end " + id);
    if (p->how == ending::exception) throw std::runtime_error("boom");
    if (p->how == ending::error) co_return boost::system::result<void, int>(7);
    co_return boost::system::result<void, int>();
  }

  boost::asio::awaitable<void> life(child_context& c, std::string id,
                                    std::optional<backplane::line> dep) {
    auto p = begin(c, id, dep);
    auto r = co_await part_manage(std::move(c.device), wait(p));
    p->running = false;
    if (!r) {
      auto const& cr = r.error();
      log.push_back((cr.is_power_off() ? "stop " : cr.is_panic() ? "kill " : "crash ") + id);
      co_return;
    }
    log.push_back("end " + id);
    c.device = std::move(r->device);
    if (p->how == ending::exception) throw std::runtime_error("boom");
  }
};

class supervisor_fixture : public ::testing::Test {
 protected:
  boost::asio::io_context ctx;
  std::shared_ptr<manual_clock> clock = std::make_shared<manual_clock>();
  std::vector<supervisor_event> events;
  std::shared_ptr<spdlog::logger> logger =
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
  puppets kids;

  supervisor_spec spec(std::string name = "sup") {
    supervisor_spec s;
    s.name = std::move(name);
    s.clock = clock;
    s.logger = logger;
    s.observer = [this](supervisor_event const& e) { events.push_back(e); };
    s.child_strands = false;
    return s;
  }

  std::size_t idle() { return run_until_idle(ctx); }

  /// Starts a supervisor that must start, and runs until idle.
  supervisor start(supervisor_spec s) {
    auto r = supervisor::start(ctx.get_executor(), std::move(s));
    if (!r) {
      ADD_FAILURE() << "supervisor did not start: " << r.error().id << ": " << r.error().reason;
      throw std::runtime_error("supervisor did not start");
    }
    idle();
    return *r;
  }

  std::vector<supervisor_event> of_kind(supervisor_event_kind k) const {
    std::vector<supervisor_event> out;
    for (auto const& e : events)
      if (e.event == k) out.push_back(e);
    return out;
  }
  std::vector<supervisor_event> of_child(std::string const& id) const {
    std::vector<supervisor_event> out;
    for (auto const& e : events)
      if (e.child == id) out.push_back(e);
    return out;
  }

  // --- the runtime API, synchronously (post, then run until idle) ---

  template <class T>
  struct reply {
    bool done = false;
    boost::system::error_code ec;
    T value{};
  };

  // Replies live in shared_ptrs: a handler that runs late (a bug the test
  // reports) must not write to a dead frame.
  template <class T>
  reply<T> wait_reply(std::shared_ptr<reply<T>> const& r) {
    idle();
    EXPECT_TRUE(r->done) << "no reply";
    return *r;
  }
  template <class T>
  static auto value_handler(std::shared_ptr<reply<T>> const& r) {
    return [r](boost::system::error_code ec, T v) { *r = {true, ec, std::move(v)}; };
  }
  static auto void_handler(std::shared_ptr<reply<int>> const& r) {
    return [r](boost::system::error_code ec) { *r = {true, ec, 0}; };
  }

  reply<std::vector<child_info>> which_ec(supervisor& s) {
    auto r = std::make_shared<reply<std::vector<child_info>>>();
    s.async_which_children(value_handler(r));
    return wait_reply(r);
  }
  std::vector<child_info> which(supervisor& s) {
    auto r = which_ec(s);
    EXPECT_FALSE(r.ec) << r.ec.message();
    return r.value;
  }
  /// The row for `id`, or nullopt if the supervisor has no such child.
  std::optional<child_info> info(supervisor& s, std::string const& id) {
    for (auto& c : which(s))
      if (c.id == id) return c;
    return std::nullopt;
  }
  std::vector<std::string> ids(supervisor& s) {
    std::vector<std::string> out;
    for (auto& c : which(s)) out.push_back(c.id);
    return out;
  }
  reply<child_counts> counts(supervisor& s) {
    auto r = std::make_shared<reply<child_counts>>();
    s.async_count_children(value_handler(r));
    return wait_reply(r);
  }
  reply<restart_budget> budget(supervisor& s) {
    auto r = std::make_shared<reply<restart_budget>>();
    s.async_restart_budget(value_handler(r));
    return wait_reply(r);
  }
  reply<child_start_result> start_child(supervisor& s, child_spec c) {
    auto r = std::make_shared<reply<child_start_result>>();
    s.async_start_child(std::move(c), value_handler(r));
    return wait_reply(r);
  }
  reply<child_start_result> restart_child(supervisor& s, std::string id) {
    auto r = std::make_shared<reply<child_start_result>>();
    s.async_restart_child(std::move(id), value_handler(r));
    return wait_reply(r);
  }
  boost::system::error_code terminate_child(supervisor& s, std::string id) {
    auto r = std::make_shared<reply<int>>();
    s.async_terminate_child(std::move(id), void_handler(r));
    return wait_reply(r).ec;
  }
  boost::system::error_code delete_child(supervisor& s, std::string id) {
    auto r = std::make_shared<reply<int>>();
    s.async_delete_child(std::move(id), void_handler(r));
    return wait_reply(r).ec;
  }
  /// Stops the supervisor and runs until it has ended.
  supervisor_exit stop(supervisor& s) {
    auto out = std::make_shared<std::optional<supervisor_exit>>();
    s.async_stop([out](boost::system::error_code ec, supervisor_exit e) {
      EXPECT_FALSE(ec);
      *out = e;
    });
    idle();
    EXPECT_TRUE(*out) << "the supervisor did not stop";
    return out->value_or(supervisor_exit{});
  }
  /// The supervisor's exit if it has ended (after idle), nullopt otherwise.
  std::optional<supervisor_exit> ended(supervisor& s) {
    // Shared: the handler may run after this returns, if the supervisor ends later.
    auto out = std::make_shared<std::optional<supervisor_exit>>();
    s.async_wait([out](boost::system::error_code, supervisor_exit e) { *out = e; });
    idle();
    return *out;
  }
};

using strings = std::vector<std::string>;

/// An event's reason on one line ("exception: std::runtime_error: boom").
inline std::string why(supervisor_event const& e) { return to_string(e.reason); }
/// An event's decision on one line: the action, " in <delay>" and " (<note>)"
/// when there are: "restart in 200ms", "none (spec removed)".
inline std::string decision(supervisor_event const& e) {
  std::string out(to_string(e.action));
  if (e.delay) out += " in " + readable(*e.delay);
  if (!e.note.empty()) out += " (" + std::string(e.note) + ")";
  return out;
}

}  // namespace backplane::test
