// The supervisor against a reference model of OTP's rules (otp_model.hpp):
// thousands of random schedules, each a random tree (strategy, intensity,
// children of every restart type, shutdown policy and temperament, and
// maybe a nested supervisor), driven by random crashes (every way a child
// can end), clock moves, start failures and runtime API calls, some of them
// made while the supervisor waits for a stubborn child to stop. After every
// step the events (per supervisor), which_children and the API's answers
// must be exactly what the model says.
//
// One io_context, one thread, a manual clock: every schedule is a pure
// function of its seed. A failure prints the seed and the schedule.
//   BACKPLANE_MODEL_SEED=<n>        replay one schedule
//   BACKPLANE_MODEL_SCHEDULES=<n>   how many (CI: 5000)
//   BACKPLANE_MODEL_BASE_SEED=<n>   where the run starts (CI: 1)

#include "supervisor/fixture.hpp"
#include "supervisor/otp_model.hpp"

#include <backplane/watch.hpp>
#include <backplane/work.hpp>

#include <boost/asio/this_coro.hpp>

#include <cstdlib>
#include <random>
#include <sstream>

namespace asio = boost::asio;
using namespace backplane;
using namespace backplane::test;
namespace m = backplane::model;

namespace {

std::uint64_t env_or(char const* name, std::uint64_t fallback) {
  char const* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

// Where the implementation differs from OTP and the fix has not landed yet,
// the model's OTP rule is switched off for that case only: each flag names
// its issue. Turn them on as the fixes land.
// BACKPLANE_MODEL_OTP=<bits> turns them on (1: 9.1, 2: 9.4, 4: issue 8; 7: all),
// to see what is left to fix.
m::model_rules const kRules = [] {
  m::model_rules r{
      .otp_rest_for_one_retry = true,               // issue 9.1: fixed
      .otp_already_present_when_restarting = true,  // issue 9.4: fixed
      .report_own_fault_after_kill = true,          // issue 8: a fault of its own after the kill
  };
  auto const on = env_or("BACKPLANE_MODEL_OTP", 0);
  if (on & 1) r.otp_rest_for_one_retry = true;
  if (on & 2) r.otp_already_present_when_restarting = true;
  if (on & 4) r.report_own_fault_after_kill = true;
  return r;
}();

/// One incarnation of a puppet child.
struct incarnation {
  explicit incarnation(asio::any_io_executor ex)
      : command(std::move(ex), asio::steady_timer::time_point::max()) {}
  asio::steady_timer command;  // cancelled by the test to end it
  m::ending how = m::ending::clean;
  bool told = false;
  bool obey = false;  // stop ignoring cancellation (a cascade, the test's cleanup)
  bool running = true;
  int cancellations = 0;
  device dep;  // a device the child monitors: faulting it is a cascade
};

struct failing {
  int left = 0;
  bool throws = false;
};

/// The real children: start functions that build puppets, keyed by
/// "supervisor path/child id".
struct puppet_house {
  std::map<std::string, failing> fail;
  std::map<std::string, std::shared_ptr<incarnation>> current;
  std::vector<std::shared_ptr<incarnation>> all;

  child_spec spec(std::string const& path, m::child_conf const& c) {
    std::string key = path + "/" + c.id;
    auto s = worker(c.id, [this, key, k = c](child_context& ctx) -> start_result {
      auto& f = fail[key];
      if (f.left > 0) {
        --f.left;
        if (f.throws) throw std::runtime_error("refused to start");
        return start_error{"refused"};
      }
      auto p = std::make_shared<incarnation>(ctx.executor);
      ctx.device.link(p->dep, link_mode::monitor);
      current[key] = p;
      all.push_back(p);
      if (k.shape == m::form::managed) return managed_life(p, k.reacts);
      return run_life(ctx, p, k.reacts);
    });
    s.restart = c.restart;
    s.shutdown = shutdown_of(c);
    return s;
  }

  static shutdown_policy shutdown_of(m::child_conf const& c) {
    switch (c.pol) {
      case m::policy::brutal: return shutdown_policy::brutal();
      case m::policy::timeout: return shutdown_policy::timeout(c.timeout);
      case m::policy::infinity: return shutdown_policy::infinity();
    }
    return shutdown_policy::infinity();
  }

  static asio::awaitable<int> command(std::shared_ptr<incarnation> p) {
    // Ends when the test cancels the timer (or the run that watches it goes).
    (void)co_await p->command.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return 0;
  }

  /// A run: watches its device and the test's command.
  static asio::awaitable<void> run_life(child_context& c, std::shared_ptr<incarnation> p,
                                        m::behaviour b) {
    work w(command(p));
    for (;;) {
      std::optional<watched<int>> r;
      std::exception_ptr killed;
      try {
        r.emplace(co_await watch(c.device, w));
      } catch (boost::system::system_error const&) {
        killed = std::current_exception();
      }
      if (killed) {
        ++p->cancellations;
        if (b == m::behaviour::ignore_all && !p->obey) {
          co_await asio::this_coro::reset_cancellation_state();
          continue;
        }
        p->running = false;
        if (b == m::behaviour::crash_on_stop) c.device.disconnect(fault::error());
        std::rethrow_exception(killed);
      }
      if (r->is_message()) {
        if (auto const* gone = as_disconnected(r->msg())) {
          if (!gone->fault) continue;
          p->running = false;
          c.device.disconnect(fault::cascade(gone->sender));
          co_return;
        }
        // A shutdown request.
        if (b == m::behaviour::comply) {
          p->running = false;
          co_return;  // a clean exit
        }
        if (b == m::behaviour::crash_on_stop) {
          p->running = false;
          c.device.disconnect(fault::error());
          co_return;
        }
        continue;  // ignored
      }
      p->running = false;
      switch (p->how) {
        case m::ending::clean:
        case m::ending::value: co_return;
        case m::ending::error: c.device.disconnect(fault::error()); co_return;
        case m::ending::thrown: throw std::runtime_error("boom");
        case m::ending::drop: {
          device gone = std::move(c.device);
          co_return;
        }
        case m::ending::cascade: co_return;  // a cascade comes as a message
      }
    }
  }

  /// A managed work: waits for the test's command; cancelled by the
  /// supervisor (a shutdown request, a kill or a linked fault), it obeys or
  /// ignores as its temperament says.
  static asio::awaitable<boost::system::result<void, int>> managed_life(
      std::shared_ptr<incarnation> p, m::behaviour b) {
    for (;;) {
      auto [ec] = co_await p->command.async_wait(asio::as_tuple(asio::use_awaitable));
      if (p->told) break;
      ++p->cancellations;
      bool const ignore =
          !p->obey && (b == m::behaviour::ignore_all ||
                       (b == m::behaviour::ignore_shutdown && p->cancellations == 1));
      if (!ignore) {
        p->running = false;
        throw boost::system::system_error(ec);
      }
      co_await asio::this_coro::reset_cancellation_state();
    }
    p->running = false;
    if (p->how == m::ending::thrown) throw std::runtime_error("boom");
    if (p->how == m::ending::error) co_return boost::system::result<void, int>(7);
    co_return boost::system::result<void, int>();
  }

  /// Tells the current incarnation of `key` to end. False if it does not run.
  bool end(std::string const& key, m::ending how) {
    auto it = current.find(key);
    if (it == current.end() || !it->second->running) return false;
    auto& p = *it->second;
    if (how == m::ending::cascade) {
      p.obey = true;
      p.dep.disconnect(fault::error());
      return true;
    }
    p.how = how;
    p.told = true;
    p.command.cancel();
    return true;
  }

  /// Ends everything still running (abandoned children), cleanly.
  void end_all() {
    for (auto& p : all) {
      if (!p->running) continue;
      p->obey = true;
      p->told = true;
      p->how = m::ending::clean;
      p->command.cancel();
    }
  }
};

struct real_reply {
  bool done = false;
  boost::system::error_code ec;
};

/// One schedule: a tree, its model, and the random driver that is also the
/// model's world.
class schedule final : public m::world {
 public:
  explicit schedule(std::uint64_t seed) : rng_(seed) {}

  /// Runs the whole schedule; returns "" or what went wrong.
  std::string run() {
    build();
    int const steps = 10 + static_cast<int>(rng_() % 30);
    for (int i = 0; i < steps && failure_.empty() && !root_->ended(); ++i) {
      step();
      check();
    }
    if (failure_.empty() && !root_->ended()) {
      trace("stop");
      stop_root();
      check();
    }
    if (failure_.empty()) {
      if (!exit_) {
        fail("the supervisor did not end after its stop");
      } else if (exit_->intensity_exceeded != root_->gave_up()) {
        fail("supervisor_exit.intensity_exceeded differs from the model");
      }
    }
    // Abandoned children still run: end them, then every incarnation must
    // have ended exactly once.
    house_.end_all();
    idle();
    if (failure_.empty()) {
      for (auto const& p : house_.all)
        if (p->running) fail("an incarnation never ended");
    }
    return failure_;
  }

  std::string const& log() const { return log_; }

  // --- model::world ---

  m::wait_result wait_stop(m::sup_model& s, m::child_conf const& c, std::uint64_t inc,
                           m::time_point deadline, bool killed) override {
    ++waiting_;
    trace(fmt::format("  (waiting for {}#{} to stop{})", c.id, inc, killed ? ", killed" : ""));
    if (&s != root_.get()) fail("a nested supervisor waited (its children all comply)");
    int const meanwhile = static_cast<int>(rng_() % 4);
    for (int i = 0; i < meanwhile && failure_.empty(); ++i) {
      switch (rng_() % 4) {
        case 0:
        case 1: crash_someone(c.id); break;
        case 2: api_call(true); break;
        case 3: {
          auto left = deadline - now_;
          if (left > m::duration(1)) advance(m::duration(1 + rng_() % (left.count() - 1)));
          break;
        }
      }
    }
    m::wait_result r;
    if (rng_() % 3 == 0) {
      // It ends on its own while being stopped: a crash during shutdown.
      auto const e = waited_ending(c);
      trace(fmt::format("  {} ends on its own: {}", c.id, name(e)));
      if (!house_.end(key(s, c.id), e)) fail(c.id + " was not running while being stopped");
      idle();
      r.ended_by = e;
    } else {
      trace(fmt::format("  clock to the deadline (+{}ms)", ms(deadline - now_)));
      clock_->advance(deadline - now_);
      now_ = deadline;
      idle();
      r.deadline_passed = true;
    }
    --waiting_;
    return r;
  }

  void abandoned(m::sup_model&, std::string const& id, std::uint64_t inc) override {
    trace(fmt::format("  ({}#{} abandoned)", id, inc));
  }

 private:
  // --- building ---

  m::child_conf random_child(std::string id, bool dynamic) {
    m::child_conf c;
    c.id = std::move(id);
    c.restart = static_cast<restart_type>(rng_() % 3);
    if (!dynamic && c.restart == restart_type::temporary && rng_() % 2)
      c.restart = restart_type::permanent;
    c.pol = static_cast<m::policy>(rng_() % 3);
    c.timeout = std::chrono::seconds(1 + rng_() % 3);
    c.shape = rng_() % 2 ? m::form::managed : m::form::run;
    if (c.pol == m::policy::infinity) {
      // An infinite wait for a child that ignores the request is a hang by design.
      c.reacts = c.shape == m::form::run && rng_() % 3 == 0 ? m::behaviour::crash_on_stop
                                                            : m::behaviour::comply;
    } else if (c.shape == m::form::run) {
      c.reacts = static_cast<m::behaviour>(rng_() % 4);
    } else {
      m::behaviour const managed[] = {m::behaviour::comply, m::behaviour::ignore_shutdown,
                                      m::behaviour::ignore_all};
      c.reacts = managed[rng_() % 3];
    }
    return c;
  }

  void build() {
    strategy_ = static_cast<restart_strategy>(rng_() % 3);
    max_ = static_cast<std::uint32_t>(rng_() % 9);
    period_ = std::chrono::seconds(1 + rng_() % 10);
    auto const max = max_;
    auto const period = period_;
    now_ = clock_->now();
    root_ = std::make_unique<m::sup_model>("root", strategy_, max, period, kRules, *this, now_);

    supervisor_spec s;
    s.name = "root";
    s.strategy = strategy_;
    s.max_restarts = max;
    s.period = period;
    s.clock = clock_;
    s.logger = logger_;
    s.observer = [this](supervisor_event const& e) { events_.push_back(e); };
    s.child_strands = false;

    int const n = 1 + static_cast<int>(rng_() % 5);
    int const nested_at = rng_() % 5 < 2 ? static_cast<int>(rng_() % n) : -1;
    for (int i = 0; i < n; ++i) {
      if (i == nested_at) {
        declared_.push_back(make_nested());
        s.children.push_back(nested_spec_);
        continue;
      }
      auto c = random_child(fmt::format("c{}", i), false);
      declared_.push_back(c);
      s.children.push_back(house_.spec("root", c));
    }
    trace(describe_tree());
    auto r = supervisor::start(ctx_.get_executor(), std::move(s));
    if (!r) return fail("the supervisor did not start");
    handle_.emplace(*r);
    handle_->async_wait([this](boost::system::error_code, supervisor_exit e) { exit_ = e; });
    root_->start(declared_);
    idle();
    check();
  }

  m::child_conf make_nested() {
    m::child_conf c;
    c.id = "n";
    c.nested = true;
    c.restart = static_cast<restart_type>(rng_() % 2);  // permanent or transient
    c.pol = static_cast<m::policy>(rng_() % 3);
    c.timeout = std::chrono::seconds(1 + rng_() % 3);
    auto const strategy = static_cast<restart_strategy>(rng_() % 3);
    auto const max = static_cast<std::uint32_t>(rng_() % 3);
    auto const period = std::chrono::seconds(1 + rng_() % 10);
    nested_ = std::make_unique<m::sup_model>("root/n", strategy, max, period, kRules, *this, now_);
    supervisor_spec ns;
    ns.name = "n";
    ns.strategy = strategy;
    ns.max_restarts = max;
    ns.period = period;
    int const kids = 1 + static_cast<int>(rng_() % 3);
    for (int i = 0; i < kids; ++i) {
      m::child_conf k = random_child(fmt::format("k{}", i), false);
      k.reacts = m::behaviour::comply;  // the nested supervisor's stops never wait
      nested_declared_.push_back(k);
      ns.children.push_back(house_.spec("root/n", k));
    }
    nested_spec_ = supervisor_child("n", ns);
    nested_spec_.restart = c.restart;
    nested_spec_.shutdown = puppet_house::shutdown_of(c);
    root_->nested = nested_.get();
    root_->on_nested_start = [this] { nested_->start(nested_declared_); };
    nested_->on_gave_up = [this] {
      // Its parent hears a fault (the run threw restart_intensity_exceeded).
      if (auto* c = root_->find("n"))
        root_->note_exit("n", c->incarnation, m::ending::error, "error");
    };
    return c;
  }

  std::string describe_tree() const {
    std::string out =
        fmt::format("root {} max={} period={}ms:", to_text(strategy_), max_, ms(period_));
    for (auto const& c : declared_) out += " " + describe(c);
    if (nested_) {
      out += " | n:";
      for (auto const& c : nested_declared_) out += " " + describe(c);
    }
    return out;
  }
  static std::string to_text(restart_strategy s) {
    return s == restart_strategy::one_for_one   ? "one_for_one"
           : s == restart_strategy::one_for_all ? "one_for_all"
                                                : "rest_for_one";
  }
  static std::string describe(m::child_conf const& c) {
    static char const* restarts[] = {"permanent", "transient", "temporary"};
    static char const* pols[] = {"brutal", "timeout", "infinity"};
    static char const* reacts[] = {"comply", "crash_on_stop", "ignore_shutdown", "ignore_all"};
    return fmt::format("{}({},{}{},{},{})", c.id, restarts[static_cast<int>(c.restart)],
                       pols[static_cast<int>(c.pol)],
                       c.pol == m::policy::timeout ? fmt::format(":{}s", ms(c.timeout) / 1000) : "",
                       c.nested                  ? "nested"
                       : c.shape == m::form::run ? "run"
                                                 : "managed",
                       reacts[static_cast<int>(c.reacts)]);
  }
  static long long ms(m::duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  }
  static char const* name(m::ending e) {
    static char const* names[] = {"clean", "value", "error", "thrown", "cascade", "drop"};
    return names[static_cast<int>(e)];
  }

  // --- driving ---

  std::size_t idle() { return run_until_idle(ctx_); }

  void advance(m::duration d) {
    trace(fmt::format("{}clock +{}ms", waiting_ ? "  " : "", ms(d)));
    clock_->advance(d);
    now_ += d;
    idle();
  }

  static std::string key(m::sup_model const& s, std::string const& id) {
    return s.path() + "/" + id;
  }

  m::ending random_ending(m::child_conf const& c) {
    if (c.shape == m::form::managed) {
      m::ending const e[] = {m::ending::value, m::ending::error, m::ending::thrown,
                             m::ending::cascade};
      return e[rng_() % 4];
    }
    m::ending const e[] = {m::ending::clean, m::ending::error, m::ending::thrown,
                           m::ending::cascade, m::ending::drop};
    return e[rng_() % 5];
  }
  /// A managed work asked to stop no longer hears its links (the request
  /// ended it already): it can only end by returning or throwing.
  m::ending waited_ending(m::child_conf const& c) {
    if (c.shape == m::form::managed) {
      m::ending const e[] = {m::ending::value, m::ending::error, m::ending::thrown};
      return e[rng_() % 3];
    }
    return random_ending(c);
  }

  /// Running puppets (not nested supervisors), except `but`.
  std::vector<std::pair<m::sup_model*, m::m_child const*>> running(std::string const& but = "") {
    std::vector<std::pair<m::sup_model*, m::m_child const*>> out;
    for (auto const& c : root_->children())
      if (c.st == m::status::running && !c.conf.nested && c.conf.id != but)
        out.emplace_back(root_.get(), &c);
    if (nested_ && !nested_->ended()) {
      if (auto const* n = root_->find("n"); n && n->st == m::status::running) {
        for (auto const& c : nested_->children())
          if (c.st == m::status::running) out.emplace_back(nested_.get(), &c);
      }
    }
    return out;
  }

  /// Ends a random running puppet (of either supervisor) in a random way.
  void crash_someone(std::string const& but = "") {
    auto live = running(but);
    if (live.empty()) return;
    auto [s, c] = live[rng_() % live.size()];
    std::string const id = c->conf.id;
    std::uint64_t const inc = c->incarnation;
    auto const e = random_ending(c->conf);
    trace(fmt::format("{}{}/{}#{} ends: {}", waiting_ ? "  " : "", s->path(), id, inc, name(e)));
    if (!house_.end(key(*s, id), e)) return fail(key(*s, id) + " was not running");
    idle();
    s->note_exit(id, inc, e, m::reason_of(e));
    if (s == nested_.get()) nested_->run();  // the nested supervisor is idle
    if (!waiting_) root_->run();
  }

  struct call_record {
    std::string what;
    std::shared_ptr<m::answer> model;
    std::shared_ptr<real_reply> real;
  };

  std::string some_id() {
    auto const& kids = root_->children();
    if (kids.empty() || rng_() % 8 == 0)
      return rng_() % 2 ? "ghost" : fmt::format("d{}", next_dynamic_);
    return kids[rng_() % kids.size()].conf.id;
  }

  void api_call(bool queued) {
    auto a = std::make_shared<m::answer>();
    auto r = std::make_shared<real_reply>();
    auto const on_done = [r](boost::system::error_code ec, auto&&...) {
      r->done = true;
      r->ec = ec;
    };
    std::string what;
    switch (rng_() % 4) {
      case 0: {
        // An id that exists (if it is gone when a queued call runs, the call
        // starts it, in the model too), or a new one.
        bool const existing = rng_() % 4 == 0 && !root_->children().empty();
        m::child_conf c =
            random_child(existing ? root_->children()[rng_() % root_->children().size()].conf.id
                                  : fmt::format("d{}", next_dynamic_++),
                         true);
        if (existing && root_->find(c.id)->conf.nested) c.id = "ghost";
        int fails = 0;
        if (!existing) {
          fails = rng_() % 5 == 0 ? 1 : 0;
          house_.fail[key(*root_, c.id)] = failing{fails, rng_() % 2 == 0};
          root_->fail_starts(c.id, fails);
        }
        child_spec spec = house_.spec("root", c);
        what = "start_child " + describe(c) + (fails ? " (fails)" : "");
        handle_->async_start_child(std::move(spec), on_done);
        idle();
        root_->api_start_child(c, a, queued);
        break;
      }
      case 1:
        what = "terminate_child " + some_id();
        handle_->async_terminate_child(what.substr(16), on_done);
        idle();
        root_->api_terminate_child(what.substr(16), a, queued);
        break;
      case 2:
        what = "restart_child " + some_id();
        handle_->async_restart_child(what.substr(14), on_done);
        idle();
        root_->api_restart_child(what.substr(14), a, queued);
        break;
      case 3:
        what = "delete_child " + some_id();
        handle_->async_delete_child(what.substr(13), on_done);
        idle();
        root_->api_delete_child(what.substr(13), a, queued);
        break;
    }
    trace((queued ? "  " : "") + what);
    calls_.push_back(call_record{what, a, r});
  }

  void step() {
    auto const pick = rng_() % 20;
    if (pick < 9) {
      crash_someone();
    } else if (pick < 12) {
      advance(std::chrono::milliseconds(rng_() % 8000));
    } else if (pick < 14) {
      // The next starts of a child fail.
      auto const& kids = root_->children();
      if (kids.empty()) return;
      auto const& c = kids[rng_() % kids.size()];
      if (c.conf.nested) return;
      int const n = 1 + static_cast<int>(rng_() % 3);
      bool const throws = rng_() % 2 == 0;
      trace(fmt::format("the next {} starts of {} fail ({})", n, c.conf.id,
                        throws ? "throw" : "start_error"));
      house_.fail[key(*root_, c.conf.id)] = failing{n, throws};
      root_->fail_starts(c.conf.id, n);
    } else if (pick < 19) {
      api_call(false);
    } else {
      trace("stop");
      stop_root();
    }
  }

  void stop_root() {
    handle_->async_stop([](boost::system::error_code, supervisor_exit) {});
    idle();
    root_->api_stop(false);
  }

  // --- checking ---

  static std::string reason_class(event_reason const& why) {
    // The model tells a throw from an error no more than manage's monitors do.
    if (why.kind == reason_kind::exception) return "error";
    return std::string(to_string(why.kind));
  }

  std::vector<m::expected_event> real_events(std::string const& path) const {
    std::vector<m::expected_event> out;
    for (auto const& e : events_) {
      if (e.supervisor != path) continue;
      out.push_back(m::expected_event{
          e.child, e.incarnation, e.event,
          e.event == supervisor_event_kind::intensity_exceeded ? ""
                                                               : std::string(to_string(e.action)),
          e.event == supervisor_event_kind::child_terminated ? reason_class(e.reason) : "",
          e.restarts});
    }
    return out;
  }

  void compare_events(std::string const& path, std::vector<m::expected_event> const& want) {
    auto const got = real_events(path);
    if (got == want) return;
    std::string msg = fmt::format("events of {} differ from the model:\n", path);
    for (std::size_t i = 0; i < std::max(got.size(), want.size()); ++i) {
      std::string g = i < got.size() ? m::to_text(got[i]) : "-";
      std::string w = i < want.size() ? m::to_text(want[i]) : "-";
      msg += fmt::format("  {} real:  {}\n     model: {}\n", g == w ? " " : "*", g, w);
    }
    fail(msg);
  }

  void check() {
    if (!failure_.empty()) return;
    compare_events("root", root_->events());
    if (nested_) compare_events("root/n", nested_->events());
    for (auto const& c : calls_) {
      if (c.real->done != c.model->done) {
        fail(fmt::format("{}: answered {} but the model says {}", c.what, c.real->done,
                         c.model->done));
      } else if (c.real->done) {
        auto const want =
            c.model->failed ? make_error_code(c.model->code) : boost::system::error_code{};
        if (c.real->ec != want)
          fail(fmt::format("{}: answered '{}', the model says '{}'", c.what, c.real->ec.message(),
                           want.message()));
      }
    }
    if (!root_->ended()) {
      bool got_reply = false;
      std::vector<child_info> kids;
      handle_->async_which_children([&](boost::system::error_code, std::vector<child_info> v) {
        kids = std::move(v);
        got_reply = true;
      });
      idle();
      if (!got_reply) return fail("which_children was not answered");
      std::string got, want;
      static char const* st[] = {"running", "restarting", "stopped"};
      for (auto const& k : kids)
        got += fmt::format(" {}#{}:{}", k.id, k.incarnation, st[static_cast<int>(k.status)]);
      for (auto const& k : root_->children())
        want += fmt::format(" {}#{}:{}", k.conf.id, k.incarnation, st[static_cast<int>(k.st)]);
      if (got != want) fail(fmt::format("which_children:{}\n         model:{}", got, want));
    } else if (!exit_) {
      fail("the model says the supervisor ended; it did not");
    }
  }

  void fail(std::string what) {
    if (failure_.empty()) failure_ = std::move(what);
  }
  void trace(std::string line) { log_ += line + "\n"; }

  std::mt19937_64 rng_;
  asio::io_context ctx_;
  std::shared_ptr<manual_clock> clock_ = std::make_shared<manual_clock>();
  std::shared_ptr<spdlog::logger> logger_ =
      std::make_shared<spdlog::logger>("model", std::make_shared<spdlog::sinks::null_sink_mt>());
  std::vector<supervisor_event> events_;
  puppet_house house_;
  m::time_point now_{};
  restart_strategy strategy_{};
  std::uint32_t max_ = 0;
  m::duration period_{};
  std::unique_ptr<m::sup_model> root_;
  std::unique_ptr<m::sup_model> nested_;
  std::vector<m::child_conf> declared_;
  std::vector<m::child_conf> nested_declared_;
  child_spec nested_spec_;
  std::optional<supervisor> handle_;
  std::optional<supervisor_exit> exit_;
  std::vector<call_record> calls_;
  int waiting_ = 0;
  int next_dynamic_ = 0;
  std::string failure_;
  std::string log_;
};

TEST(SupervisorModel, RandomSchedulesFollowOtpRules) {
  std::uint64_t const one = env_or("BACKPLANE_MODEL_SEED", 0);
  std::uint64_t const base = one ? one : env_or("BACKPLANE_MODEL_BASE_SEED", 1);
  std::uint64_t const count = one ? 1 : env_or("BACKPLANE_MODEL_SCHEDULES", 5000);
  for (std::uint64_t seed = base; seed < base + count; ++seed) {
    schedule s(seed);
    std::string const failure = s.run();
    if (one && env_or("BACKPLANE_MODEL_VERBOSE", 0)) std::printf("%s", s.log().c_str());
    if (!failure.empty()) {
      ADD_FAILURE() << "schedule " << seed << " (replay: BACKPLANE_MODEL_SEED=" << seed << "):\n"
                    << failure << "\nschedule:\n"
                    << s.log();
      return;
    }
  }
}

}  // namespace
