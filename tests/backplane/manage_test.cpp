// part_manage and manage: how each ending becomes a crash, what monitors
// hear, and the work being cancelled and destroyed before a crash is seen.

#include "support/run_until_idle.hpp"

#include <backplane/backplane.hpp>

#include <gtest/gtest.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace {

namespace asio = boost::asio;
using namespace backplane;
using backplane::test::run_until_idle;
using backplane::test::start;

struct app_error {
  int code;
  std::string why;
  friend bool operator==(app_error const&, app_error const&) = default;
};

using work_result = boost::system::result<int, app_error>;
using void_result = boost::system::result<void, app_error>;

asio::awaitable<work_result> pending() {
  co_await test::forever();
  co_return work_result(boost::system::in_place_value, 0);
}

asio::awaitable<work_result> returns(int v) {
  co_return work_result(boost::system::in_place_value, v);
}

asio::awaitable<work_result> fails(app_error e) {
  co_return work_result(boost::system::in_place_error, std::move(e));
}

/// Finishes with 7 once `gate` receives anything.
asio::awaitable<work_result> gated(device& gate) {
  (void)co_await gate.async_receive(asio::use_awaitable);
  co_return work_result(boost::system::in_place_value, 7);
}

// --- crash<E> itself ---

TEST(Crash, AccessorsAnswerOnlyForTheirKind) {
  auto power = crash<app_error>::power_off(device_id(1));
  auto panic = crash<app_error>::panic(std::make_exception_ptr(std::runtime_error("x")));
  auto error = crash<app_error>::error(app_error{2, "two"});
  auto cascade = crash<app_error>::cascade(device_id(3), fault::drop());

  EXPECT_TRUE(power.is_power_off());
  EXPECT_EQ(power.requester(), device_id(1));
  EXPECT_EQ(power.device_fault(), std::nullopt);

  EXPECT_TRUE(panic.is_panic());
  EXPECT_TRUE(panic.exception());
  EXPECT_EQ(panic.device_fault(), fault::error());

  EXPECT_TRUE(error.is_error());
  EXPECT_EQ(error.error_value(), (app_error{2, "two"}));
  EXPECT_EQ(error.device_fault(), fault::error());

  EXPECT_TRUE(cascade.is_cascade());
  EXPECT_EQ(cascade.cascade_origin(), device_id(3));
  EXPECT_EQ(cascade.cascade_fault(), fault::drop());
  EXPECT_EQ(cascade.device_fault(), fault::cascade(device_id(3)));

  for (auto const* c : {&panic, &error, &cascade}) EXPECT_EQ(c->requester(), device_id{});
  for (auto const* c : {&power, &error, &cascade}) EXPECT_FALSE(c->exception());
  for (auto const* c : {&power, &panic, &error}) EXPECT_EQ(c->cascade_origin(), device_id{});
  for (auto const* c : {&power, &panic, &cascade})
    EXPECT_THROW((void)c->error_value(), std::logic_error);
}

TEST(Crash, DefaultIsAPowerOffByNobody) {
  crash<int> c;
  EXPECT_TRUE(c.is_power_off());
  EXPECT_EQ(c.requester(), device_id{});
}

TEST(Crash, ResultValueThrowsCrashErrorOrTheOriginalException) {
  using R = boost::system::result<int, crash<int>>;
  R cascaded(boost::system::in_place_error, crash<int>::cascade(device_id(1), fault::error()));
  EXPECT_THROW((void)cascaded.value(), crash_error);
  R errored(boost::system::in_place_error, crash<int>::error(5));
  EXPECT_THROW((void)errored.value(), crash_error);
  R powered(boost::system::in_place_error, crash<int>::power_off(device_id(1)));
  EXPECT_THROW((void)powered.value(), crash_error);
  R panicked(boost::system::in_place_error,
             crash<int>::panic(std::make_exception_ptr(std::out_of_range("index 9"))));
  try {
    (void)panicked.value();
    FAIL();
  } catch (std::out_of_range const& e) {
    EXPECT_STREQ(e.what(), "index 9");
  }
}

// --- how each ending becomes a crash ---

TEST(Manage, ShutdownRequestIsAPowerOffWithTheRequester) {
  for (bool part : {true, false}) {
    asio::io_context ctx;
    device subject;
    device observer;
    device requester;
    observer.link(subject, link_mode::monitor);
    auto subject_id = subject.id();
    auto l = subject.line();
    std::optional<crash<app_error>> crashed;
    if (part) {
      auto r = start(ctx, part_manage(std::move(subject), pending()));
      run_until_idle(ctx);
      EXPECT_FALSE(r->done);
      EXPECT_TRUE(l.request_shutdown(requester.id()));
      run_until_idle(ctx);
      ASSERT_TRUE(r->done);
      ASSERT_TRUE(r->value && r->value->has_error());
      crashed = r->value->error();
    } else {
      auto r = start(ctx, manage(std::move(subject), pending()));
      run_until_idle(ctx);
      EXPECT_TRUE(l.request_shutdown(requester.id()));
      run_until_idle(ctx);
      ASSERT_TRUE(r->done);
      ASSERT_TRUE(r->value && r->value->has_error());
      crashed = r->value->error();
    }
    EXPECT_TRUE(crashed->is_power_off()) << fmt::format("{}", *crashed);
    EXPECT_EQ(crashed->requester(), requester.id());
    EXPECT_EQ(crashed->device_fault(), std::nullopt);
    // A power-off is a clean disconnect.
    EXPECT_EQ(observer.try_receive(), message(disconnected{subject_id, std::nullopt}));
    EXPECT_FALSE(l.connected());
  }
}

struct custom_failure : std::runtime_error {
  custom_failure(std::string const& what, int c) : std::runtime_error(what), code(c) {}
  int code;
};

asio::awaitable<work_result> throws_custom_later(device& gate) {
  (void)co_await gate.async_receive(asio::use_awaitable);
  throw custom_failure("disk on fire", 451);
}

TEST(Manage, ExceptionIsAPanicHoldingTheOriginalException) {
  asio::io_context ctx;
  device subject;
  device observer;
  device gate;
  observer.link(subject, link_mode::monitor);
  auto subject_id = subject.id();
  auto r = start(ctx, manage(std::move(subject), throws_custom_later(gate)));
  run_until_idle(ctx);
  gate.line().request_shutdown(device_id(1));
  run_until_idle(ctx);
  ASSERT_TRUE(r->done);
  ASSERT_TRUE(r->value && r->value->has_error());
  auto const& c = r->value->error();
  ASSERT_TRUE(c.is_panic());
  try {
    std::rethrow_exception(c.exception());
  } catch (custom_failure const& e) {
    EXPECT_STREQ(e.what(), "disk on fire");
    EXPECT_EQ(e.code, 451);
  }
  // value() rethrows the very same exception.
  try {
    (void)r->value->value();
    FAIL();
  } catch (custom_failure const& e) {
    EXPECT_EQ(e.code, 451);
  }
  EXPECT_EQ(fmt::format("{}", c), "panic: (anonymous namespace)::custom_failure: disk on fire");
  // Monitors hear the very same exception as the cause.
  EXPECT_EQ(observer.try_receive(),
            message(disconnected{subject_id, fault::error(), c.exception()}));
}

TEST(Manage, ErrorIsACrashHoldingTheValue) {
  asio::io_context ctx;
  device subject;
  device observer;
  observer.link(subject, link_mode::monitor);
  auto subject_id = subject.id();
  auto r = start(ctx, part_manage(std::move(subject), fails(app_error{28, "no space"})));
  run_until_idle(ctx);
  ASSERT_TRUE(r->done);
  ASSERT_TRUE(r->value && r->value->has_error());
  auto const& c = r->value->error();
  ASSERT_TRUE(c.is_error());
  EXPECT_EQ(c.error_value(), (app_error{28, "no space"}));
  EXPECT_THROW((void)r->value->value(), crash_error);
  // Monitors hear the error described: a returned_error as the cause.
  auto m = observer.try_receive();
  ASSERT_TRUE(m);
  auto const* gone = as_disconnected(*m);
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->sender, subject_id);
  EXPECT_EQ(gone->fault, fault::error());
  try {
    ASSERT_TRUE(gone->cause);
    std::rethrow_exception(gone->cause);
  } catch (returned_error const& e) {
    EXPECT_EQ(e.how(), returned_error::kind::opaque);
    EXPECT_EQ(e.type_name(), "(anonymous namespace)::app_error");
  } catch (...) {
    ADD_FAILURE() << "the cause is " << describe(gone->cause);
  }
}

asio::awaitable<void> manage_into(device d, asio::awaitable<work_result> w, bool part,
                                  std::optional<crash<app_error>>& out) {
  if (part) {
    auto r = co_await part_manage(std::move(d), std::move(w));
    if (!r) out = r.error();
  } else {
    auto r = co_await manage(std::move(d), std::move(w));
    if (!r) out = r.error();
  }
}

TEST(Manage, CascadeNamesTheOriginAndEveryMonitorHearsIt) {
  // root <- a (part_manage) <- b (manage) <- c (manage) <- watcher
  asio::io_context ctx;
  device root;
  device a;
  device b;
  device c;
  device watcher;
  auto root_id = root.id();
  auto a_id = a.id();
  auto b_id = b.id();
  auto c_id = c.id();
  a.link(root, link_mode::monitor);
  ASSERT_FALSE(b.link_line(a.line(), link_mode::monitor));
  c.link(b, link_mode::peer);
  watcher.link(c, link_mode::monitor);
  std::optional<crash<app_error>> ca;
  std::optional<crash<app_error>> cb;
  std::optional<crash<app_error>> cc;
  asio::co_spawn(ctx, manage_into(std::move(a), pending(), true, ca), asio::detached);
  asio::co_spawn(ctx, manage_into(std::move(b), pending(), false, cb), asio::detached);
  asio::co_spawn(ctx, manage_into(std::move(c), pending(), false, cc), asio::detached);
  run_until_idle(ctx);
  EXPECT_FALSE(ca || cb || cc);

  root.disconnect(fault::error());
  run_until_idle(ctx);
  ASSERT_TRUE(ca && cb && cc);
  EXPECT_TRUE(ca->is_cascade());
  EXPECT_EQ(ca->cascade_origin(), root_id);
  EXPECT_EQ(ca->cascade_fault(), fault::error());
  EXPECT_TRUE(cb->is_cascade());
  EXPECT_EQ(cb->cascade_origin(), a_id);
  EXPECT_EQ(cb->cascade_fault(), fault::cascade(root_id));
  EXPECT_TRUE(cc->is_cascade());
  EXPECT_EQ(cc->cascade_origin(), b_id);
  EXPECT_EQ(cc->cascade_fault(), fault::cascade(a_id));
  EXPECT_EQ(fmt::format("{}", *cc), fmt::format("cascade from {} (cascade from {})", b_id, a_id));
  EXPECT_EQ(watcher.try_receive(), message(disconnected{c_id, fault::cascade(b_id)}));
  EXPECT_FALSE(watcher.try_receive());
}

TEST(Manage, CleanExitOfAMonitoredDeviceIsForgottenAndTheWorkGoesOn) {
  asio::io_context ctx;
  device subject;
  device other;
  device gate;
  subject.link(other, link_mode::peer);
  auto r = start(ctx, manage(std::move(subject), gated(gate)));
  run_until_idle(ctx);
  other.disconnect();
  run_until_idle(ctx);
  EXPECT_FALSE(r->done);
  gate.line().request_shutdown(device_id(1));
  run_until_idle(ctx);
  ASSERT_TRUE(r->done);
  ASSERT_TRUE(r->value && r->value->has_value());
  EXPECT_EQ(**r->value, 7);
}

TEST(Manage, ADeviceWeOnlyNotifyCannotCrashUs) {
  asio::io_context ctx;
  device subject;
  device other;
  device gate;
  subject.link(other, link_mode::notify);
  auto r = start(ctx, manage(std::move(subject), gated(gate)));
  run_until_idle(ctx);
  other.disconnect(fault::error());
  run_until_idle(ctx);
  EXPECT_FALSE(r->done);
  gate.line().request_shutdown(device_id(1));
  run_until_idle(ctx);
  ASSERT_TRUE(r->done);
  ASSERT_TRUE(r->value && r->value->has_value());
}

TEST(Manage, MessageBeatsAWorkThatIsAlsoDone) {
  asio::io_context ctx;
  device subject;
  device requester;
  subject.line().request_shutdown(requester.id());
  auto r = start(ctx, manage(std::move(subject), returns(3)));
  run_until_idle(ctx);
  ASSERT_TRUE(r->done);
  ASSERT_TRUE(r->value && r->value->has_error());
  EXPECT_TRUE(r->value->error().is_power_off());
  EXPECT_EQ(r->value->error().requester(), requester.id());
}

TEST(PartManage, SuccessReturnsTheDeviceForMore) {
  asio::io_context ctx;
  device subject;
  device observer;
  observer.link(subject, link_mode::monitor);
  auto subject_id = subject.id();
  auto first = start(ctx, part_manage(std::move(subject), returns(1)));
  run_until_idle(ctx);
  ASSERT_TRUE(first->done);
  ASSERT_TRUE(first->value && first->value->has_value());
  EXPECT_EQ((*first->value)->value, 1);
  device again = std::move((*first->value)->device);
  EXPECT_EQ(again.id(), subject_id);
  EXPECT_EQ(again.link_to(observer.id()), link_mode::notify);
  EXPECT_FALSE(observer.try_receive());
  // Manage it once more, this time to failure: heard exactly once.
  auto second = start(ctx, manage(std::move(again), fails(app_error{1, "late"})));
  run_until_idle(ctx);
  ASSERT_TRUE(second->done);
  ASSERT_TRUE(second->value && second->value->has_error());
  auto heard = observer.try_receive();
  ASSERT_TRUE(heard);
  EXPECT_EQ(as_disconnected(*heard)->sender, subject_id);
  EXPECT_EQ(as_disconnected(*heard)->fault, fault::error());
  EXPECT_FALSE(observer.try_receive());
}

asio::awaitable<void_result> void_ok() { co_return void_result(); }

TEST(PartManage, VoidResults) {
  asio::io_context ctx;
  device subject;
  device observer;
  observer.link(subject, link_mode::monitor);
  auto subject_id = subject.id();
  auto part = start(ctx, part_manage(std::move(subject), void_ok()));
  run_until_idle(ctx);
  ASSERT_TRUE(part->done);
  ASSERT_TRUE(part->value && part->value->has_value());
  device d = std::move((*part->value)->device);
  EXPECT_EQ(d.id(), subject_id);
  auto whole = start(ctx, manage(std::move(d), void_ok()));
  run_until_idle(ctx);
  ASSERT_TRUE(whole->done);
  ASSERT_TRUE(whole->value && whole->value->has_value());
  EXPECT_EQ(observer.try_receive(), message(disconnected{subject_id, std::nullopt}));
}

// --- the work is cancelled and destroyed before the crash is seen ---

enum class cause { cascade, power_off, outer_cancel };

/// Logs how the work ended, and whether the device was still connected when
/// its frame went away.
asio::awaitable<work_result> logged_work(std::vector<std::string>& log, line subject) {
  struct guard {
    std::vector<std::string>* log;
    line subject;
    ~guard() {
      log->push_back(subject.connected() ? "work destroyed, device connected"
                                         : "work destroyed, device gone");
    }
  } g{&log, subject};
  try {
    co_await test::forever();
  } catch (boost::system::system_error const& e) {
    log.push_back(e.code() == asio::error::operation_aborted ? "work aborted" : "other error");
    throw;
  }
  co_return work_result(boost::system::in_place_value, 0);
}

asio::awaitable<void> manage_logged(device d, bool part, std::vector<std::string>& log,
                                    std::optional<crash<app_error>>& out) {
  auto l = d.line();
  if (part) {
    auto r = co_await part_manage(std::move(d), logged_work(log, l));
    if (!r) out = r.error();
  } else {
    auto r = co_await manage(std::move(d), logged_work(log, l));
    if (!r) out = r.error();
  }
  log.push_back(l.connected() ? "returned, device connected" : "returned, device gone");
}

using cancel_param = std::tuple<bool, cause>;

class WorkCancelledOnCrash : public ::testing::TestWithParam<cancel_param> {};

TEST_P(WorkCancelledOnCrash, BeforeTheCrashIsReturned) {
  auto [part, why] = GetParam();
  asio::io_context ctx;
  device subject;
  device other;
  device observer;
  subject.link(other, link_mode::monitor);
  observer.link(subject, link_mode::monitor);
  auto subject_id = subject.id();
  auto other_id = other.id();
  auto l = subject.line();
  std::vector<std::string> log;
  std::optional<crash<app_error>> crashed;
  asio::cancellation_signal signal;
  asio::co_spawn(ctx, manage_logged(std::move(subject), part, log, crashed),
                 asio::bind_cancellation_slot(signal.slot(), asio::detached));
  run_until_idle(ctx);
  EXPECT_TRUE(log.empty());

  switch (why) {
    case cause::cascade: other.disconnect(fault::error()); break;
    case cause::power_off: l.request_shutdown(other_id); break;
    case cause::outer_cancel: signal.emit(asio::cancellation_type::terminal); break;
  }
  run_until_idle(ctx);
  EXPECT_EQ(log, (std::vector<std::string>{"work aborted", "work destroyed, device connected",
                                           "returned, device gone"}));
  ASSERT_TRUE(crashed);
  std::optional<fault> heard;
  switch (why) {
    case cause::cascade:
      EXPECT_TRUE(crashed->is_cascade());
      heard = fault::cascade(other_id);
      break;
    case cause::power_off:
      EXPECT_TRUE(crashed->is_power_off());
      EXPECT_EQ(crashed->requester(), other_id);
      break;
    case cause::outer_cancel:
      ASSERT_TRUE(crashed->is_panic());
      heard = fault::error();
      try {
        std::rethrow_exception(crashed->exception());
      } catch (boost::system::system_error const& e) {
        EXPECT_EQ(e.code(), asio::error::operation_aborted);
      }
      break;
  }
  EXPECT_EQ(observer.try_receive(), message(disconnected{subject_id, heard}));
  EXPECT_FALSE(observer.try_receive());
}

std::string cancel_name(::testing::TestParamInfo<cancel_param> const& info) {
  auto [part, why] = info.param;
  std::string n = part ? "PartManage" : "Manage";
  switch (why) {
    case cause::cascade: return n + "Cascade";
    case cause::power_off: return n + "PowerOff";
    case cause::outer_cancel: return n + "OuterCancel";
  }
  return n;
}

INSTANTIATE_TEST_SUITE_P(Manage, WorkCancelledOnCrash,
                         ::testing::Combine(::testing::Bool(),
                                            ::testing::Values(cause::cascade, cause::power_off,
                                                              cause::outer_cancel)),
                         cancel_name);

/// Shrugs off the first cancellation, then finishes when `gate` hears.
asio::awaitable<work_result> stubborn(device& gate, int& shrugs) {
  try {
    co_await test::forever();
  } catch (boost::system::system_error const&) {
    ++shrugs;
  }
  co_await asio::this_coro::reset_cancellation_state();
  (void)co_await gate.async_receive(asio::use_awaitable);
  co_return work_result(boost::system::in_place_value, 1);
}

TEST(Manage, AWorkIgnoringCancellationHoldsUpTheCrash) {
  asio::io_context ctx;
  device subject;
  device other;
  device gate;
  device observer;
  subject.link(other, link_mode::monitor);
  observer.link(subject, link_mode::monitor);
  auto subject_id = subject.id();
  auto other_id = other.id();
  int shrugs = 0;
  auto r = start(ctx, manage(std::move(subject), stubborn(gate, shrugs)));
  run_until_idle(ctx);
  other.disconnect(fault::drop());
  run_until_idle(ctx);
  EXPECT_EQ(shrugs, 1);
  EXPECT_FALSE(r->done) << "the crash waits for the work to finish";
  EXPECT_FALSE(observer.try_receive()) << "nobody hears of it before then either";
  gate.line().request_shutdown(device_id(1));
  run_until_idle(ctx);
  ASSERT_TRUE(r->done);
  ASSERT_TRUE(r->value && r->value->has_error());
  EXPECT_TRUE(r->value->error().is_cascade());
  EXPECT_EQ(observer.try_receive(), message(disconnected{subject_id, fault::cascade(other_id)}));
}

class CancelledWhileTheWorkFinishes : public ::testing::TestWithParam<cause> {};

TEST_P(CancelledWhileTheWorkFinishes, StillWaitsAndReturnsTheCrash) {
  // The crash is decided (a cascade, or a first cancellation of the caller),
  // the work shrugs off its cancellation, and meanwhile the caller is
  // cancelled (again). manage must still wait for the work and return the
  // crash: nothing may leave the work running unseen.
  asio::io_context ctx;
  device subject;
  device other;
  device gate;
  device observer;
  subject.link(other, link_mode::monitor);
  observer.link(subject, link_mode::monitor);
  auto subject_id = subject.id();
  auto other_id = other.id();
  int shrugs = 0;
  std::optional<crash<app_error>> crashed;
  std::exception_ptr escaped;
  bool done = false;
  asio::cancellation_signal signal;
  asio::co_spawn(ctx, manage_into(std::move(subject), stubborn(gate, shrugs), false, crashed),
                 asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e) {
                   escaped = e;
                   done = true;
                 }));
  run_until_idle(ctx);
  if (GetParam() == cause::cascade) {
    other.disconnect(fault::error());
  } else {
    signal.emit(asio::cancellation_type::terminal);
  }
  run_until_idle(ctx);
  EXPECT_EQ(shrugs, 1);
  EXPECT_FALSE(done);
  signal.emit(asio::cancellation_type::terminal);
  run_until_idle(ctx);
  EXPECT_FALSE(done) << "the crash must wait for the work";
  EXPECT_FALSE(observer.try_receive());
  gate.line().request_shutdown(device_id(1));
  run_until_idle(ctx);
  ASSERT_TRUE(done);
  EXPECT_FALSE(escaped) << describe(escaped);
  ASSERT_TRUE(crashed);
  if (GetParam() == cause::cascade) {
    EXPECT_TRUE(crashed->is_cascade()) << fmt::format("{}", *crashed);
    EXPECT_EQ(observer.try_receive(), message(disconnected{subject_id, fault::cascade(other_id)}));
  } else {
    EXPECT_TRUE(crashed->is_panic()) << fmt::format("{}", *crashed);
    EXPECT_EQ(observer.try_receive(), message(disconnected{subject_id, fault::error()}));
  }
  EXPECT_FALSE(observer.try_receive());
}

INSTANTIATE_TEST_SUITE_P(Manage, CancelledWhileTheWorkFinishes,
                         ::testing::Values(cause::cascade, cause::outer_cancel),
                         [](auto const& info) {
                           return info.param == cause::cascade ? "AfterACascade"
                                                               : "AfterAFirstCancel";
                         });

}  // namespace
