// spawn_managed and async_manage: manage's table restated case by case for
// the one-coroutine form (a co_spawned work and a callback receive), what
// monitors hear and when, and per-operation cancellation at each point.

#include "support/run_until_idle.hpp"

#include <backplane/backplane.hpp>

#include <gtest/gtest.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
using namespace backplane;
using backplane::test::run_until_idle;

using work_result = boost::system::result<int, std::string>;
using end_result = boost::system::result<int, crash<std::string>>;

/// What the end handler saw: the result, and whether the device had already
/// disconnected when it ran.
struct seen {
  std::optional<end_result> result;
  int calls = 0;
  bool device_was_gone = false;
};

/// The end handler: records into `s`; `l` is the managed device's line.
struct record {
  std::shared_ptr<seen> s;
  line l;
  void operator()(end_result r) const {
    ++s->calls;
    s->device_was_gone = !l.connected();
    s->result.emplace(std::move(r));
  }
};

/// Sets `*flag` when destroyed: tells a work's frame is gone.
struct frame_probe {
  std::shared_ptr<bool> flag;
  ~frame_probe() {
    if (flag) *flag = true;
  }
};

asio::awaitable<work_result> returns(int v) {
  co_return work_result(boost::system::in_place_value, v);
}

/// Finishes with `v` (or the error `e`) once `gate` hears anything.
asio::awaitable<work_result> gated(device& gate, work_result r, std::shared_ptr<bool> gone = {}) {
  frame_probe probe{std::move(gone)};
  (void)co_await gate.async_receive(asio::use_awaitable);
  co_return r;
}

asio::awaitable<work_result> parked(std::shared_ptr<bool> gone) {
  frame_probe probe{std::move(gone)};
  co_await test::forever();
  co_return work_result(boost::system::in_place_value, 0);
}

asio::awaitable<work_result> throws_after(device& gate) {
  (void)co_await gate.async_receive(asio::use_awaitable);
  throw std::runtime_error("disk on fire");
}

/// The common cast: the managed device, a monitor of it, and the handler.
struct cast {
  asio::io_context ctx;
  device subject;
  device observer;
  device_id subject_id = subject.id();
  line subject_line = subject.line();
  std::shared_ptr<seen> s = std::make_shared<seen>();
  cast() { observer.link(subject, link_mode::monitor); }
  record handler() const { return record{s, subject_line}; }
};

TEST(SpawnManaged, ValueDisconnectsCleanlyThenCallsTheHandler) {
  cast c;
  device gate;
  auto h = spawn_managed(c.ctx.get_executor(), std::move(c.subject),
                         gated(gate, work_result(boost::system::in_place_value, 42)), c.handler());
  EXPECT_EQ(h.line().id(), c.subject_id);
  run_until_idle(c.ctx);
  EXPECT_EQ(c.s->calls, 0);
  EXPECT_TRUE(c.subject_line.connected());
  gate.line().request_shutdown(device_id(1));
  run_until_idle(c.ctx);
  ASSERT_EQ(c.s->calls, 1);
  EXPECT_TRUE(c.s->device_was_gone) << "the handler runs after the disconnect";
  ASSERT_TRUE(c.s->result->has_value());
  EXPECT_EQ(**c.s->result, 42);
  EXPECT_EQ(c.observer.try_receive(), message(disconnected{c.subject_id, std::nullopt}));
}

TEST(SpawnManaged, ErrorDisconnectsWithTheReturnedErrorAsCause) {
  cast c;
  device gate;
  spawn_managed(c.ctx.get_executor(), std::move(c.subject),
                gated(gate, work_result(boost::system::in_place_error, "disk full")), c.handler());
  run_until_idle(c.ctx);
  gate.line().request_shutdown(device_id(1));
  run_until_idle(c.ctx);
  ASSERT_EQ(c.s->calls, 1);
  EXPECT_TRUE(c.s->device_was_gone);
  ASSERT_TRUE(c.s->result->has_error());
  ASSERT_TRUE(c.s->result->error().is_error());
  EXPECT_EQ(c.s->result->error().error_value(), "disk full");
  auto m = c.observer.try_receive();
  ASSERT_TRUE(m);
  auto const* gone = as_disconnected(*m);
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->fault, fault::error());
  ASSERT_TRUE(gone->cause);
  try {
    std::rethrow_exception(gone->cause);
  } catch (returned_error const& e) {
    EXPECT_STREQ(e.what(), "disk full");
  }
}

TEST(SpawnManaged, ThrowIsAPanicAndTheCause) {
  cast c;
  device gate;
  spawn_managed(c.ctx.get_executor(), std::move(c.subject), throws_after(gate), c.handler());
  run_until_idle(c.ctx);
  gate.line().request_shutdown(device_id(1));
  run_until_idle(c.ctx);
  ASSERT_EQ(c.s->calls, 1);
  EXPECT_TRUE(c.s->device_was_gone);
  ASSERT_TRUE(c.s->result->has_error());
  auto const& k = c.s->result->error();
  ASSERT_TRUE(k.is_panic());
  EXPECT_EQ(describe(k.exception()), "std::runtime_error: disk on fire");
  EXPECT_EQ(c.observer.try_receive(),
            message(disconnected{c.subject_id, fault::error(), k.exception()}));
}

TEST(SpawnManaged, LinkedFaultCascadesAfterTheWorkIsCancelledAndGone) {
  cast c;
  device other;
  c.subject.link(other, link_mode::monitor);
  auto other_id = other.id();
  auto gone = std::make_shared<bool>(false);
  spawn_managed(c.ctx.get_executor(), std::move(c.subject), parked(gone),
                [s = c.s, gone, l = c.subject_line](end_result r) {
                  ++s->calls;
                  s->device_was_gone = !l.connected();
                  EXPECT_TRUE(*gone) << "the work's frame is destroyed before the end";
                  s->result.emplace(std::move(r));
                });
  run_until_idle(c.ctx);
  other.disconnect(fault::drop());
  run_until_idle(c.ctx);
  ASSERT_EQ(c.s->calls, 1);
  EXPECT_TRUE(*gone);
  EXPECT_TRUE(c.s->device_was_gone);
  auto const& k = c.s->result->error();
  ASSERT_TRUE(k.is_cascade());
  EXPECT_EQ(k.cascade_origin(), other_id);
  EXPECT_EQ(k.cascade_fault(), fault::drop());
  EXPECT_EQ(c.observer.try_receive(),
            message(disconnected{c.subject_id, fault::cascade(other_id)}));
}

TEST(SpawnManaged, CleanExitOfALinkedDeviceIsForgottenAndTheWorkGoesOn) {
  cast c;
  device other;
  device gate;
  c.subject.link(other, link_mode::monitor);
  spawn_managed(c.ctx.get_executor(), std::move(c.subject),
                gated(gate, work_result(boost::system::in_place_value, 5)), c.handler());
  run_until_idle(c.ctx);
  other.disconnect();
  run_until_idle(c.ctx);
  EXPECT_EQ(c.s->calls, 0);
  EXPECT_TRUE(c.subject_line.connected());
  // Still listening: a second linked device's fault is heard.
  device third;
  ASSERT_FALSE(third.link_line(c.subject_line, link_mode::notify));
  third.disconnect(fault::error());
  run_until_idle(c.ctx);
  ASSERT_EQ(c.s->calls, 1);
  EXPECT_TRUE(c.s->result->error().is_cascade());
}

TEST(SpawnManaged, ShutdownRequestIsACleanPowerOff) {
  cast c;
  device requester;
  auto gone = std::make_shared<bool>(false);
  spawn_managed(c.ctx.get_executor(), std::move(c.subject), parked(gone), c.handler());
  run_until_idle(c.ctx);
  EXPECT_TRUE(c.subject_line.request_shutdown(requester.id()));
  run_until_idle(c.ctx);
  ASSERT_EQ(c.s->calls, 1);
  EXPECT_TRUE(*gone);
  ASSERT_TRUE(c.s->result->error().is_power_off());
  EXPECT_EQ(c.s->result->error().requester(), requester.id());
  EXPECT_EQ(c.observer.try_receive(), message(disconnected{c.subject_id, std::nullopt}));
}

TEST(SpawnManaged, RequestStopOnTheHandleIsAPowerOffWithoutTheMailbox) {
  cast c;
  device requester;
  auto gone = std::make_shared<bool>(false);
  auto h = spawn_managed(c.ctx.get_executor(), std::move(c.subject), parked(gone), c.handler());
  run_until_idle(c.ctx);
  h.request_stop(requester.id());
  run_until_idle(c.ctx);
  ASSERT_EQ(c.s->calls, 1);
  EXPECT_TRUE(*gone);
  ASSERT_TRUE(c.s->result->error().is_power_off());
  EXPECT_EQ(c.s->result->error().requester(), requester.id());
  EXPECT_EQ(c.observer.try_receive(), message(disconnected{c.subject_id, std::nullopt}));
  h.request_stop(requester.id());  // after the end: nothing
  run_until_idle(c.ctx);
  EXPECT_EQ(c.s->calls, 1);
}

TEST(SpawnManaged, RequestStopBeforeTheWorkBeganWaitsForItsFirstStep) {
  // Asked on the executor's thread in a handler that runs before the work's
  // first resumption: held until the work has begun (Asio 1.81's co_spawn
  // would throw out of run() otherwise).
  cast c;
  device requester;
  auto gone = std::make_shared<bool>(false);
  std::optional<managed_work> h;
  asio::post(c.ctx, [&] { h->request_stop(requester.id()); });
  h = spawn_managed(c.ctx.get_executor(), std::move(c.subject), parked(gone), c.handler());
  EXPECT_NO_THROW(run_until_idle(c.ctx));
  ASSERT_EQ(c.s->calls, 1);
  EXPECT_TRUE(*gone);
  EXPECT_TRUE(c.s->result->error().is_power_off());
}

TEST(SpawnManaged, AMessageBeatsAWorkThatIsAlsoDone) {
  // As in manage: sent before the work ran, the request wins over the value.
  cast c;
  device requester;
  c.subject_line.request_shutdown(requester.id());
  spawn_managed(c.ctx.get_executor(), std::move(c.subject), returns(3), c.handler());
  run_until_idle(c.ctx);
  ASSERT_EQ(c.s->calls, 1);
  ASSERT_TRUE(c.s->result->has_error());
  EXPECT_TRUE(c.s->result->error().is_power_off());
  EXPECT_EQ(c.s->result->error().requester(), requester.id());
}

TEST(SpawnManaged, AMessageWhoseWakeUpIsStillQueuedBeatsTheValue) {
  // The work's gate opens, then a shutdown arrives: the work ends first, while
  // the listener's wake-up is still in the queue. manage would see both ready
  // and take the message; so does spawn_managed.
  cast c;
  device gate;
  device requester;
  spawn_managed(c.ctx.get_executor(), std::move(c.subject),
                gated(gate, work_result(boost::system::in_place_value, 9)), c.handler());
  run_until_idle(c.ctx);
  gate.line().request_shutdown(device_id(1));
  c.subject_line.request_shutdown(requester.id());
  run_until_idle(c.ctx);
  ASSERT_EQ(c.s->calls, 1);
  ASSERT_TRUE(c.s->result->has_error());
  EXPECT_TRUE(c.s->result->error().is_power_off());
  EXPECT_EQ(c.observer.try_receive(), message(disconnected{c.subject_id, std::nullopt}));
}

/// Cancellation through the handler's slot: manage's per-operation
/// cancellation (the work cancelled and gone, then fault::error()).
void expect_cancelled(cast& c, std::shared_ptr<bool> const& gone) {
  ASSERT_EQ(c.s->calls, 1);
  EXPECT_TRUE(*gone);
  EXPECT_TRUE(c.s->device_was_gone);
  ASSERT_TRUE(c.s->result->has_error());
  auto const& k = c.s->result->error();
  ASSERT_TRUE(k.is_panic());
  try {
    std::rethrow_exception(k.exception());
  } catch (boost::system::system_error const& e) {
    EXPECT_EQ(e.code(), asio::error::operation_aborted);
  }
  EXPECT_EQ(c.observer.try_receive(), message(disconnected{c.subject_id, fault::error()}));
}

TEST(SpawnManagedCancel, WhileTheWorkIsParked) {
  cast c;
  asio::cancellation_signal sig;
  auto gone = std::make_shared<bool>(false);
  spawn_managed(c.ctx.get_executor(), std::move(c.subject), parked(gone),
                asio::bind_cancellation_slot(sig.slot(), c.handler()));
  run_until_idle(c.ctx);
  EXPECT_FALSE(*gone);
  sig.emit(asio::cancellation_type::terminal);
  run_until_idle(c.ctx);
  expect_cancelled(c, gone);
  EXPECT_FALSE(sig.slot().has_handler()) << "the slot is cleared at the end";
}

TEST(SpawnManagedCancel, BeforeTheWorkFirstRanNothingEscapesRun) {
  // Asio 1.81's co_spawn throws out of run() if a cancellation reaches a work
  // before its first resumption: the request is held until it has begun.
  // Emitted from the test's thread right after the call, and emitted on the
  // executor's thread by a handler that runs before the work's first step.
  for (bool on_executor : {false, true}) {
    cast c;
    asio::cancellation_signal sig;
    auto gone = std::make_shared<bool>(false);
    if (on_executor) asio::post(c.ctx, [&] { sig.emit(asio::cancellation_type::terminal); });
    spawn_managed(c.ctx.get_executor(), std::move(c.subject), parked(gone),
                  asio::bind_cancellation_slot(sig.slot(), c.handler()));
    if (!on_executor) sig.emit(asio::cancellation_type::terminal);
    EXPECT_NO_THROW(run_until_idle(c.ctx));
    expect_cancelled(c, gone);
  }
}

TEST(SpawnManagedCancel, PartialCancellationToo) {
  cast c;
  asio::cancellation_signal sig;
  auto gone = std::make_shared<bool>(false);
  spawn_managed(c.ctx.get_executor(), std::move(c.subject), parked(gone),
                asio::bind_cancellation_slot(sig.slot(), c.handler()));
  run_until_idle(c.ctx);
  sig.emit(asio::cancellation_type::partial);
  run_until_idle(c.ctx);
  expect_cancelled(c, gone);
}

TEST(SpawnManagedCancel, AfterTheEndWasDecidedCancelsTheWorkAgainKeepingTheEnd) {
  // A shutdown decided the end; the work shrugs off its cancellation and
  // waits again. Nobody hears anything until it has finished; a cancellation
  // on the handler's slot then cancels it again, and the end stays a
  // power-off.
  cast c;
  device gate;
  device requester;
  asio::cancellation_signal sig;
  int shrugs = 0;
  auto stubborn = [](device& g, int& n) -> asio::awaitable<work_result> {
    try {
      co_await test::forever();
    } catch (boost::system::system_error const&) {
      ++n;
    }
    co_await asio::this_coro::reset_cancellation_state();
    (void)co_await g.async_receive(asio::use_awaitable);
    co_return work_result(boost::system::in_place_value, 1);
  };
  spawn_managed(c.ctx.get_executor(), std::move(c.subject), stubborn(gate, shrugs),
                asio::bind_cancellation_slot(sig.slot(), c.handler()));
  run_until_idle(c.ctx);
  c.subject_line.request_shutdown(requester.id());
  run_until_idle(c.ctx);
  EXPECT_EQ(shrugs, 1);
  EXPECT_EQ(c.s->calls, 0) << "the end waits for the work";
  EXPECT_FALSE(c.observer.try_receive()) << "nobody hears before the work is gone";
  sig.emit(asio::cancellation_type::terminal);
  run_until_idle(c.ctx);
  ASSERT_EQ(c.s->calls, 1) << "cancelled again, the work has finished";
  EXPECT_TRUE(c.s->result->error().is_power_off());
  EXPECT_EQ(c.observer.try_receive(), message(disconnected{c.subject_id, std::nullopt}));
}

TEST(SpawnManagedCancel, AtTheMomentOfCompletionTheValueStands) {
  // The work ends and the handler's slot is cancelled in the same pass: the
  // work's end, seen first, stands; nothing escapes run().
  cast c;
  device gate;
  asio::cancellation_signal sig;
  spawn_managed(c.ctx.get_executor(), std::move(c.subject),
                gated(gate, work_result(boost::system::in_place_value, 4)),
                asio::bind_cancellation_slot(sig.slot(), c.handler()));
  run_until_idle(c.ctx);
  gate.line().request_shutdown(device_id(1));
  c.ctx.poll_one();  // the work resumes and ends
  sig.emit(asio::cancellation_type::terminal);
  EXPECT_NO_THROW(run_until_idle(c.ctx));
  ASSERT_EQ(c.s->calls, 1);
  ASSERT_TRUE(c.s->result->has_value());
  EXPECT_EQ(**c.s->result, 4);
}

TEST(AsyncManage, LosingAnOrRaceCancelsAndWaitsForTheWork) {
  using namespace asio::experimental::awaitable_operators;
  cast c;
  auto gone = std::make_shared<bool>(false);
  bool done = false;
  asio::co_spawn(
      c.ctx,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer t(c.ctx, std::chrono::steady_clock::time_point::min());
        auto r = co_await (async_manage(c.ctx.get_executor(), std::move(c.subject), parked(gone),
                                        asio::use_awaitable) ||
                           t.async_wait(asio::use_awaitable));
        EXPECT_EQ(r.index(), 1u);
        EXPECT_TRUE(*gone) << "the work is gone once the race returns";
        done = true;
      },
      asio::detached);
  c.ctx.run();
  EXPECT_TRUE(done);
  EXPECT_EQ(c.observer.try_receive(), message(disconnected{c.subject_id, fault::error()}));
}

TEST(AsyncManage, WinningAnOrRaceGivesTheValue) {
  using namespace asio::experimental::awaitable_operators;
  cast c;
  bool done = false;
  asio::co_spawn(
      c.ctx,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer t(c.ctx, std::chrono::steady_clock::time_point::max());
        auto r = co_await (async_manage(c.ctx.get_executor(), std::move(c.subject), returns(8),
                                        asio::use_awaitable) ||
                           t.async_wait(asio::use_awaitable));
        EXPECT_EQ(r.index(), 0u);
        EXPECT_EQ(*std::get<0>(r), 8);
        done = true;
      },
      asio::detached);
  c.ctx.run();
  EXPECT_TRUE(done);
  EXPECT_EQ(c.observer.try_receive(), message(disconnected{c.subject_id, std::nullopt}));
}

TEST(AsyncManage, ParallelGroupCancelsTheLoserAtTheMomentOfCompletion) {
  // Both operations are ready in the same pass (the timer has expired, the
  // work returns at once): whichever the group sees first wins, the other is
  // cancelled at the moment it completes. Either way one end, no escape.
  for (int round = 0; round < 2; ++round) {
    cast c;
    asio::steady_timer t(c.ctx, std::chrono::steady_clock::time_point::min());
    std::optional<end_result> got;
    int calls = 0;
    auto work = round == 0 ? returns(1) : parked(std::make_shared<bool>(false));
    asio::experimental::make_parallel_group(
        async_manage(c.ctx.get_executor(), std::move(c.subject), std::move(work), asio::deferred),
        t.async_wait(asio::deferred))
        .async_wait(asio::experimental::wait_for_one(),
                    [&](std::array<std::size_t, 2>, end_result r, boost::system::error_code) {
                      ++calls;
                      got.emplace(std::move(r));
                    });
    EXPECT_NO_THROW(c.ctx.run());
    ASSERT_EQ(calls, 1);
    EXPECT_FALSE(c.subject_line.connected());
    if (round == 1) {
      ASSERT_TRUE(got->has_error());
      EXPECT_TRUE(got->error().is_panic());
      EXPECT_EQ(c.observer.try_receive(), message(disconnected{c.subject_id, fault::error()}));
    } else {
      EXPECT_TRUE(c.observer.try_receive());
    }
  }
}

TEST(SpawnManaged, TeardownWithAParkedWorkFreesEverything) {
  auto gone = std::make_shared<bool>(false);
  auto handler_alive = std::make_shared<int>(0);
  std::weak_ptr<int> handler_watch = handler_alive;
  device observer;
  device_id id;
  {
    asio::io_context ctx;
    device subject;
    id = subject.id();
    observer.link(subject, link_mode::monitor);
    spawn_managed(ctx.get_executor(), std::move(subject), parked(gone),
                  [keep = std::move(handler_alive)](end_result) { ADD_FAILURE(); });
    run_until_idle(ctx);
    EXPECT_FALSE(*gone);
  }
  EXPECT_TRUE(*gone) << "the work's frame is destroyed with its context";
  EXPECT_TRUE(handler_watch.expired()) << "the handler is destroyed, not called";
  EXPECT_EQ(observer.try_receive(), message(disconnected{id, fault::drop()}));
}

TEST(SpawnManaged, TeardownWithACancellationSlotStillBoundClearsIt) {
  asio::cancellation_signal sig;
  {
    asio::io_context ctx;
    spawn_managed(ctx.get_executor(), device(), parked(std::make_shared<bool>(false)),
                  asio::bind_cancellation_slot(sig.slot(), [](end_result) {}));
    run_until_idle(ctx);
  }
  EXPECT_FALSE(sig.slot().has_handler());
  sig.emit(asio::cancellation_type::terminal);  // must not reach freed memory
}

TEST(SpawnManaged, TeardownWhenTheHandlerOwnsItsSlotsSignal) {
  // A supervisor's child record owns the signal its kill emits and is owned
  // by the end handler: the slot is forgotten before the handler goes
  // (AddressSanitizer sees the use after free otherwise).
  auto sig = std::make_shared<asio::cancellation_signal>();
  std::weak_ptr<asio::cancellation_signal> watch = sig;
  {
    asio::io_context ctx;
    auto slot = sig->slot();
    spawn_managed(ctx.get_executor(), device(), parked(std::make_shared<bool>(false)),
                  asio::bind_cancellation_slot(slot, [keep = std::move(sig)](end_result) {}));
    run_until_idle(ctx);
  }
  EXPECT_TRUE(watch.expired());
}

TEST(SpawnManaged, AReceiveLeftOnTheDeviceEndsTheRunWithAClearError) {
  cast c;
  bool other_receive_done = false;
  c.subject.async_receive(asio::bind_executor(
      c.ctx, [&](boost::system::error_code, message) { other_receive_done = true; }));
  auto gone = std::make_shared<bool>(false);
  spawn_managed(c.ctx.get_executor(), std::move(c.subject), parked(gone), c.handler());
  run_until_idle(c.ctx);
  ASSERT_EQ(c.s->calls, 1);
  EXPECT_TRUE(*gone);
  ASSERT_TRUE(c.s->result->error().is_panic());
  EXPECT_NE(describe(c.s->result->error().exception()).find("do not receive on it"),
            std::string::npos);
  EXPECT_TRUE(other_receive_done);
}

TEST(SpawnManaged, FourThreadsWithStrandsEveryEndOnceAndHeard) {
  // 200 works, each on its own strand of a 4-thread context, each linked to
  // a trigger; half the triggers fault (cascade), half are asked to shut
  // down from the test thread while the works run.
  constexpr int n = 200;
  asio::io_context ctx;
  auto guard = asio::make_work_guard(ctx);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&] { ctx.run(); });
  std::atomic<int> ends{0};
  std::atomic<int> cascades{0};
  std::atomic<int> power_offs{0};
  std::vector<device> triggers(n);
  std::vector<line> lines;
  device observer;
  for (int i = 0; i < n; ++i) {
    device d;
    d.link(triggers[i], link_mode::monitor);
    observer.link(d, link_mode::monitor);
    lines.push_back(d.line());
    spawn_managed(asio::make_strand(ctx), std::move(d), parked(std::make_shared<bool>(false)),
                  [&](end_result r) {
                    if (r.has_error() && r.error().is_cascade()) ++cascades;
                    if (r.has_error() && r.error().is_power_off()) ++power_offs;
                    ++ends;
                  });
  }
  for (int i = 0; i < n; ++i) {
    if (i % 2) {
      triggers[i].disconnect(fault::error());
    } else {
      (void)lines[i].request_shutdown(device_id(1));
    }
  }
  int heard = 0;
  while (heard < n) {
    auto m = observer.try_receive();
    if (m) {
      ++heard;
    } else {
      std::this_thread::yield();
    }
  }
  guard.reset();
  for (auto& t : threads) t.join();
  EXPECT_EQ(ends.load(), n);
  EXPECT_EQ(cascades.load(), n / 2);
  EXPECT_EQ(power_offs.load(), n / 2);
}

TEST(SpawnManagedBorrowed, TheWorkUsesTheDeviceItsOwnerKeeps) {
  // The device stays the test's (a supervisor keeps its child's so): the work
  // links it through its reference, and the rules still apply to it.
  cast c;
  device other;
  auto other_id = other.id();
  auto gone = std::make_shared<bool>(false);
  auto work = [](device& d, line o, std::shared_ptr<bool> g) -> asio::awaitable<work_result> {
    EXPECT_FALSE(d.link_line(o, link_mode::monitor));
    co_return co_await parked(std::move(g));
  };
  spawn_managed(c.ctx.get_executor(), std::ref(c.subject), work(c.subject, other.line(), gone),
                c.handler());
  run_until_idle(c.ctx);
  other.disconnect(fault::error());
  run_until_idle(c.ctx);
  ASSERT_EQ(c.s->calls, 1);
  EXPECT_TRUE(*gone);
  EXPECT_TRUE(c.s->result->error().is_cascade());
  EXPECT_FALSE(c.subject.valid()) << "disconnected in place";
  EXPECT_EQ(c.observer.try_receive(),
            message(disconnected{c.subject_id, fault::cascade(other_id)}));
}

TEST(SpawnManagedBorrowed, ADeviceTheWorkTookIsLeftToItsNewOwner) {
  cast c;
  device requester;
  auto work = [](device& d) -> asio::awaitable<work_result> {
    device mine = std::move(d);
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    mine.disconnect(fault::drop());
    co_return work_result(boost::system::in_place_value, 6);
  };
  spawn_managed(c.ctx.get_executor(), std::ref(c.subject), work(c.subject), c.handler());
  run_until_idle(c.ctx);
  ASSERT_EQ(c.s->calls, 1);
  ASSERT_TRUE(c.s->result->has_value()) << "the work's own outcome";
  EXPECT_EQ(**c.s->result, 6);
  EXPECT_EQ(c.observer.try_receive(), message(disconnected{c.subject_id, fault::drop()}))
      << "only the new owner's end";
  EXPECT_FALSE(c.observer.try_receive());
}

TEST(SpawnManagedBorrowed, ADeviceTakenBeforeTheCallIsLeftToItsOwner) {
  // The work was made by handing the device to manage (a supervisor's start
  // function may do so): nothing to listen to, nothing to disconnect. The
  // work is manage's, so its error type is manage's crash.
  cast c;
  auto inner = [](int v) -> asio::awaitable<work_result> {
    co_return work_result(boost::system::in_place_value, v);
  };
  std::optional<int> got;
  auto h = spawn_managed(c.ctx.get_executor(), std::ref(c.subject),
                         manage(std::move(c.subject), inner(2)),
                         [&](boost::system::result<int, crash<crash<std::string>>> r) {
                           ASSERT_TRUE(r.has_value());
                           got = *r;
                         });
  EXPECT_FALSE(h.line().valid());
  run_until_idle(c.ctx);
  EXPECT_EQ(got, 2);
  EXPECT_EQ(c.observer.try_receive(), message(disconnected{c.subject_id, std::nullopt}))
      << "manage's own clean end, once";
  EXPECT_FALSE(c.observer.try_receive());
}

TEST(Manage, AnErrorReturnedByValueIsDescribedInTheCause) {
  asio::io_context ctx;
  device subject;
  device observer;
  observer.link(subject, link_mode::monitor);
  auto work = []() -> asio::awaitable<boost::system::result<int, boost::system::error_code>> {
    co_return boost::system::error_code(boost::system::errc::no_space_on_device,
                                        boost::system::generic_category());
  };
  auto r = test::start(ctx, manage(std::move(subject), work()));
  run_until_idle(ctx);
  ASSERT_TRUE(r->done);
  auto m = observer.try_receive();
  ASSERT_TRUE(m);
  auto const* gone = as_disconnected(*m);
  ASSERT_TRUE(gone && gone->cause);
  try {
    std::rethrow_exception(gone->cause);
  } catch (returned_error const& e) {
    EXPECT_EQ(e.category(), "generic");
    EXPECT_EQ(e.code(), static_cast<int>(boost::system::errc::no_space_on_device));
    EXPECT_EQ(e.message(), "No space left on device");
  }
}

}  // namespace
