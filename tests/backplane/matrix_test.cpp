// The seed crate's matrix (tests/watch.rs, part_manage.rs, manage.rs), written
// against our API: {watch, part_manage, manage} x {linked as a device, through
// a line} x {monitor, peer} x {the other device succeeds, errors, is dropped},
// plus the solo cases, plus the other direction: what a linked device that is
// still alive hears of us.
//
// Each case checks what the subject's operation returns, what an observer
// monitoring the subject hears, and what became of the link to the other.

#include "support/run_until_idle.hpp"

#include <backplane/backplane.hpp>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>

namespace {

namespace asio = boost::asio;
using namespace backplane;
using backplane::test::run_until_idle;
using backplane::test::start;

using error_type = std::string;
using work_result = boost::system::result<int, error_type>;

enum class op { watch, part_manage, manage };
enum class via { device, line };
/// How a device ends: disconnects cleanly / with fault::error / is dropped,
/// or, for a work: returns a value / returns an error / throws.
enum class ending { succeeds, errors, fails };

char const* name(op o) {
  switch (o) {
    case op::watch: return "Watch";
    case op::part_manage: return "PartManage";
    case op::manage: return "Manage";
  }
  return "?";
}
char const* name(via v) { return v == via::device ? "Device" : "Line"; }
char const* name(link_mode m) { return m == link_mode::monitor ? "Monitor" : "Peer"; }

asio::awaitable<work_result> succeeding_work() { co_return work_result(42); }

asio::awaitable<work_result> erroring_work() {
  co_return work_result(boost::system::in_place_error, "bad");
}

asio::awaitable<work_result> throwing_work() {
  throw std::runtime_error("boom");
  co_return work_result(0);
}

asio::awaitable<work_result> pending_work() {
  co_await test::forever();
  co_return work_result(0);
}

asio::awaitable<work_result> work_that(ending e) {
  switch (e) {
    case ending::succeeds: return succeeding_work();
    case ending::errors: return erroring_work();
    case ending::fails: break;
  }
  return throwing_work();
}

void link_to_other(device& subject, device& other, via v, link_mode mode) {
  if (v == via::device) {
    subject.link(other, mode);
  } else {
    ASSERT_FALSE(subject.link_line(other.line(), mode));
  }
  ASSERT_EQ(subject.link_to(other.id()), mode);
}

void expect_runtime_error(std::exception_ptr const& e, std::string const& what) {
  ASSERT_TRUE(e);
  try {
    std::rethrow_exception(e);
  } catch (std::runtime_error const& ex) {
    EXPECT_EQ(ex.what(), what);
  } catch (...) {
    ADD_FAILURE() << "unexpected exception: " << describe(std::current_exception());
  }
}

// ---------------------------------------------------------------------------
// The other device ends first; the subject is watching or managed.

using ends_param = std::tuple<op, via, link_mode, ending>;

class OtherDeviceEnds : public ::testing::TestWithParam<ends_param> {};

TEST_P(OtherDeviceEnds, SubjectAndObserverSeeIt) {
  auto [o, v, mode, end] = GetParam();
  asio::io_context ctx;
  device subject;
  device observer;
  observer.link(subject, link_mode::monitor);
  auto subject_id = subject.id();

  std::optional<device> other(std::in_place);
  auto other_id = other->id();
  auto other_line = other->line();
  link_to_other(subject, *other, v, mode);

  std::optional<fault> other_fault;
  switch (end) {
    case ending::succeeds: other->disconnect(); break;
    case ending::errors:
      other_fault = fault::error();
      other->disconnect(fault::error());
      break;
    case ending::fails:
      other_fault = fault::drop();
      other.reset();
      break;
  }
  // The other side is gone, and so is the link, on both ends.
  EXPECT_FALSE(other_line.connected());
  EXPECT_FALSE(subject.link_to(other_id));
  EXPECT_EQ(subject.link_count(), 1u);  // the observer only
  message heard = disconnected{other_id, other_fault};

  switch (o) {
    case op::watch: {
      // As in the seed, the watched work never finishes: the message decides.
      std::optional<work<work_result>> w(std::in_place, pending_work());
      auto r = start(ctx, watch(subject, *w));
      run_until_idle(ctx);
      ASSERT_TRUE(r->done);
      ASSERT_TRUE(r->value) << describe(r->error);
      ASSERT_TRUE(r->value->is_message());
      EXPECT_EQ(r->value->msg(), heard);
      // watch judges nothing: the subject is still there, the work goes on,
      // and nobody heard anything.
      EXPECT_TRUE(subject.valid());
      EXPECT_TRUE(w->started());
      EXPECT_FALSE(w->done());
      EXPECT_FALSE(observer.try_receive());
      EXPECT_EQ(observer.link_to(subject_id), link_mode::monitor);
      w.reset();
      run_until_idle(ctx);
      return;
    }
    case op::part_manage: {
      auto work = end == ending::succeeds ? succeeding_work() : pending_work();
      auto r = start(ctx, part_manage(std::move(subject), std::move(work)));
      run_until_idle(ctx);
      ASSERT_TRUE(r->done);
      ASSERT_TRUE(r->value) << describe(r->error);
      auto& res = *r->value;
      if (end == ending::succeeds) {
        // A clean exit of a monitored device is forgotten.
        ASSERT_TRUE(res.has_value()) << fmt::format("{}", res.error());
        EXPECT_EQ(res->value, 42);
        ASSERT_TRUE(res->device.valid());
        EXPECT_EQ(res->device.id(), subject_id);
        EXPECT_FALSE(observer.try_receive());
        EXPECT_EQ(observer.link_to(subject_id), link_mode::monitor);
      } else {
        ASSERT_TRUE(res.has_error());
        EXPECT_TRUE(res.error().is_cascade()) << fmt::format("{}", res.error());
        EXPECT_EQ(res.error().cascade_origin(), other_id);
        EXPECT_EQ(res.error().cascade_fault(), *other_fault);
        EXPECT_EQ(observer.try_receive(),
                  message(disconnected{subject_id, fault::cascade(other_id)}));
        EXPECT_EQ(observer.link_count(), 0u);
      }
      return;
    }
    case op::manage: {
      auto work = end == ending::succeeds ? succeeding_work() : pending_work();
      auto r = start(ctx, manage(std::move(subject), std::move(work)));
      run_until_idle(ctx);
      ASSERT_TRUE(r->done);
      ASSERT_TRUE(r->value) << describe(r->error);
      auto& res = *r->value;
      if (end == ending::succeeds) {
        ASSERT_TRUE(res.has_value()) << fmt::format("{}", res.error());
        EXPECT_EQ(*res, 42);
        EXPECT_EQ(observer.try_receive(), message(disconnected{subject_id, std::nullopt}));
      } else {
        ASSERT_TRUE(res.has_error());
        EXPECT_TRUE(res.error().is_cascade()) << fmt::format("{}", res.error());
        EXPECT_EQ(res.error().cascade_origin(), other_id);
        EXPECT_EQ(res.error().cascade_fault(), *other_fault);
        EXPECT_EQ(observer.try_receive(),
                  message(disconnected{subject_id, fault::cascade(other_id)}));
      }
      EXPECT_EQ(observer.link_count(), 0u);
      return;
    }
  }
}

std::string ends_name(::testing::TestParamInfo<ends_param> const& info) {
  auto [o, v, mode, end] = info.param;
  char const* e = end == ending::succeeds ? "Succeeds" : end == ending::errors ? "Errors" : "Drops";
  return std::string(name(o)) + name(v) + name(mode) + "Other" + e;
}

INSTANTIATE_TEST_SUITE_P(
    Matrix, OtherDeviceEnds,
    ::testing::Combine(::testing::Values(op::watch, op::part_manage, op::manage),
                       ::testing::Values(via::device, via::line),
                       ::testing::Values(link_mode::monitor, link_mode::peer),
                       ::testing::Values(ending::succeeds, ending::errors, ending::fails)),
    ends_name);

// ---------------------------------------------------------------------------
// Solo: no links to anything but an observer; the work itself ends.

/// `m` with a `returned_error` cause replaced by null, after checking that it
/// describes the error the work returned (the error's text).
std::optional<message> returned_as_null(std::optional<message> m, bool expected) {
  bool found = false;
  struct check {
    bool& found;
    bool expected;
    ~check() { EXPECT_EQ(found, expected) << "a returned error's cause describes it"; }
  } c{found, expected};
  if (!m) return m;
  auto* gone = std::get_if<disconnected>(&*m);
  if (!gone || !gone->cause) return m;
  try {
    std::rethrow_exception(gone->cause);
  } catch (returned_error const& e) {
    EXPECT_STREQ(e.what(), "bad");
    found = true;
    gone->cause = nullptr;
  } catch (...) {
  }
  return m;
}

using solo_param = std::tuple<op, ending>;

class Solo : public ::testing::TestWithParam<solo_param> {};

TEST_P(Solo, WorkEnds) {
  auto [o, end] = GetParam();
  asio::io_context ctx;
  device subject;
  device observer;
  observer.link(subject, link_mode::monitor);
  auto subject_id = subject.id();

  if (o == op::watch) {
    work<work_result> w(work_that(end));
    auto r = start(ctx, watch(subject, w));
    run_until_idle(ctx);
    ASSERT_TRUE(r->done);
    ASSERT_TRUE(r->value) << describe(r->error);
    auto& seen = *r->value;
    EXPECT_TRUE(w.done());
    switch (end) {
      case ending::succeeds:
        ASSERT_TRUE(seen.is_completed());
        EXPECT_EQ(seen.value(), work_result(42));
        break;
      case ending::errors:
        // watch hands the result over as it is; judging it is manage's job.
        ASSERT_TRUE(seen.is_completed());
        EXPECT_EQ(seen.value(), work_result(boost::system::in_place_error, "bad"));
        break;
      case ending::fails:
        ASSERT_TRUE(seen.is_panic());
        expect_runtime_error(seen.exception(), "boom");
        break;
    }
    EXPECT_TRUE(subject.valid());
    EXPECT_FALSE(observer.try_receive());
    return;
  }

  std::optional<crash<error_type>> crashed;
  if (o == op::part_manage) {
    auto r = start(ctx, part_manage(std::move(subject), work_that(end)));
    run_until_idle(ctx);
    ASSERT_TRUE(r->done);
    ASSERT_TRUE(r->value) << describe(r->error);
    auto& res = *r->value;
    if (end == ending::succeeds) {
      ASSERT_TRUE(res.has_value());
      EXPECT_EQ(res->value, 42);
      EXPECT_EQ(res->device.id(), subject_id);
      EXPECT_EQ(res->device.link_count(), 1u);  // still linked to the observer
      EXPECT_FALSE(observer.try_receive());
      return;
    }
    ASSERT_TRUE(res.has_error());
    crashed = res.error();
  } else {
    auto r = start(ctx, manage(std::move(subject), work_that(end)));
    run_until_idle(ctx);
    ASSERT_TRUE(r->done);
    ASSERT_TRUE(r->value) << describe(r->error);
    auto& res = *r->value;
    if (end == ending::succeeds) {
      ASSERT_TRUE(res.has_value());
      EXPECT_EQ(*res, 42);
      EXPECT_EQ(observer.try_receive(), message(disconnected{subject_id, std::nullopt}));
      return;
    }
    ASSERT_TRUE(res.has_error());
    crashed = res.error();
  }
  if (end == ending::errors) {
    ASSERT_TRUE(crashed->is_error()) << fmt::format("{}", *crashed);
    EXPECT_EQ(crashed->error_value(), "bad");
  } else {
    ASSERT_TRUE(crashed->is_panic()) << fmt::format("{}", *crashed);
    expect_runtime_error(crashed->exception(), "boom");
  }
  EXPECT_EQ(crashed->device_fault(), fault::error());
  // A throw reaches monitors as the cause; an error returned by value as a
  // returned_error describing it.
  if (end == ending::errors) {
    EXPECT_EQ(returned_as_null(observer.try_receive(), true),
              message(disconnected{subject_id, fault::error()}));
  } else {
    EXPECT_EQ(observer.try_receive(),
              message(disconnected{subject_id, fault::error(), crashed->exception()}));
  }
  EXPECT_FALSE(observer.try_receive());
}

std::string solo_name(::testing::TestParamInfo<solo_param> const& info) {
  auto [o, end] = info.param;
  char const* e = end == ending::succeeds ? "Succeeds"
                  : end == ending::errors ? "Errors"
                                          : "Throws";
  return std::string(name(o)) + "Work" + e;
}

INSTANTIATE_TEST_SUITE_P(
    Matrix, Solo,
    ::testing::Combine(::testing::Values(op::watch, op::part_manage, op::manage),
                       ::testing::Values(ending::succeeds, ending::errors, ending::fails)),
    solo_name);

// ---------------------------------------------------------------------------
// The other direction: the other device stays alive and our work ends. A
// peer hears us (exactly as our monitors do); a device we only monitor does
// not.

using hears_param = std::tuple<op, via, link_mode, ending>;

class OtherSideHearsUs : public ::testing::TestWithParam<hears_param> {};

TEST_P(OtherSideHearsUs, OnlyWhenPeered) {
  auto [o, v, mode, end] = GetParam();
  asio::io_context ctx;
  device subject;
  device other;
  auto subject_id = subject.id();
  link_to_other(subject, other, v, mode);

  // What the subject's end is heard as, by anybody who hears it at all.
  std::optional<message> told;
  std::optional<device> returned;  // part_manage's success hands the device back
  if (o == op::watch) {
    work<work_result> w(work_that(end));
    auto r = start(ctx, watch(subject, w));
    run_until_idle(ctx);
    ASSERT_TRUE(r->done);
    ASSERT_TRUE(r->value) << describe(r->error);
    EXPECT_FALSE(r->value->is_message());
    EXPECT_TRUE(subject.valid());
    EXPECT_EQ(subject.link_to(other.id()), mode);
  } else if (o == op::part_manage) {
    auto r = start(ctx, part_manage(std::move(subject), work_that(end)));
    run_until_idle(ctx);
    ASSERT_TRUE(r->done);
    ASSERT_TRUE(r->value) << describe(r->error);
    ASSERT_EQ(r->value->has_value(), end == ending::succeeds);
    if (end == ending::succeeds) {
      // Still connected and still linked: nobody is told anything.
      returned.emplace(std::move((*r->value)->device));
      EXPECT_EQ(returned->link_to(other.id()), mode);
    } else {
      auto const& c = r->value->error();
      told = disconnected{subject_id, fault::error(), c.is_panic() ? c.exception() : nullptr};
    }
  } else {
    auto r = start(ctx, manage(std::move(subject), work_that(end)));
    run_until_idle(ctx);
    ASSERT_TRUE(r->done);
    ASSERT_TRUE(r->value) << describe(r->error);
    ASSERT_EQ(r->value->has_value(), end == ending::succeeds);
    if (end == ending::succeeds) {
      told = disconnected{subject_id, std::nullopt};
    } else {
      auto const& c = r->value->error();
      told = disconnected{subject_id, fault::error(), c.is_panic() ? c.exception() : nullptr};
    }
  }

  if (told && mode == link_mode::peer) {
    EXPECT_EQ(returned_as_null(other.try_receive(), o != op::watch && end == ending::errors), told);
  }
  EXPECT_FALSE(other.try_receive());
  // The other device lives on, and is no longer linked to a gone subject.
  EXPECT_TRUE(other.line().connected());
  EXPECT_EQ(other.link_count(), told ? 0u : 1u);
}

std::string hears_name(::testing::TestParamInfo<hears_param> const& info) {
  auto [o, v, mode, end] = info.param;
  char const* e = end == ending::succeeds ? "Succeeds"
                  : end == ending::errors ? "Errors"
                                          : "Throws";
  return std::string(name(o)) + name(v) + name(mode) + "Work" + e;
}

INSTANTIATE_TEST_SUITE_P(
    Matrix, OtherSideHearsUs,
    ::testing::Combine(::testing::Values(op::watch, op::part_manage, op::manage),
                       ::testing::Values(via::device, via::line),
                       ::testing::Values(link_mode::monitor, link_mode::peer),
                       ::testing::Values(ending::succeeds, ending::errors, ending::fails)),
    hears_name);

}  // namespace
