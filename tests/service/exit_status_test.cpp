// The exit status table, one row per child process: each row runs run_service in a child
// process (a gtest death test, re-executed: "threadsafe" style) and checks how it exits.

#include "children.hpp"

#include <backplane/service/run_service.hpp>

#include <gtest/gtest.h>

#include <cstdlib>

namespace {

using namespace backplane;
using namespace backplane::test;

class ExitStatus : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }

  /// The options of every row: no systemd (the test runner may itself be under systemd).
  static service_options options() {
    service_options o;
    o.systemd = false;
    o.logger = muted_logger();
    return o;
  }
};

TEST_F(ExitStatus, TableValuesAreStable) {
  EXPECT_EQ(to_int(service_exit::clean), 0);
  EXPECT_EQ(to_int(service_exit::gave_up), 3);
  EXPECT_EQ(to_int(service_exit::failed_start), 4);
  EXPECT_EQ(to_int(service_exit::forced), 5);
  EXPECT_EQ(to_int(service_exit::deadline_exceeded), 6);
  EXPECT_EQ(to_int(service_exit::internal_error), 70);
  EXPECT_EQ(to_int(service_exit::bad_spec), 78);
  EXPECT_EQ(to_string(service_exit::deadline_exceeded), "deadline_exceeded");
}

TEST_F(ExitStatus, SigtermStopsCleanlyWithZero) {
  auto row = [] {
    auto spec = root_spec();
    spec.children = {server("a"), raiser("b")};
    std::exit(to_int(run_service(std::move(spec), options())));
  };
  EXPECT_EXIT(row(), ::testing::ExitedWithCode(0), "");
}

TEST_F(ExitStatus, SigintStopsCleanlyWithZeroOnFourThreads) {
  auto row = [] {
    auto spec = root_spec();
    spec.child_strands = true;
    spec.children = {server("a"), server("b"), raiser("c", SIGINT)};
    auto o = options();
    o.threads = 4;
    std::exit(to_int(run_service(std::move(spec), o)));
  };
  EXPECT_EXIT(row(), ::testing::ExitedWithCode(0), "");
}

TEST_F(ExitStatus, RootGivingUpIsThree) {
  auto row = [] {
    auto spec = root_spec();
    spec.max_restarts = 0;
    spec.children = {server("a"), crasher("b")};
    std::exit(to_int(run_service(std::move(spec), options())));
  };
  EXPECT_EXIT(row(), ::testing::ExitedWithCode(3), "");
}

TEST_F(ExitStatus, FailedStartIsFour) {
  auto row = [] {
    auto spec = root_spec();
    spec.children = {server("a"), unstartable("db")};
    std::exit(to_int(run_service(std::move(spec), options())));
  };
  EXPECT_EXIT(row(), ::testing::ExitedWithCode(4), "");
}

TEST_F(ExitStatus, SecondSignalIsFive) {
  // The first SIGTERM comes from `b`'s run; `a` ignores the stop and raises the second.
  auto row = [] {
    auto spec = root_spec();
    spec.children = {stubborn("a", SIGTERM), raiser("b")};
    // _Exit, as a process that gave up on a wedged child would end: the wedged frames are never
    // freed, and exit()'s leak check (ASan builds) would turn the status into its own.
    std::_Exit(to_int(run_service(std::move(spec), options())));
  };
  EXPECT_EXIT(row(), ::testing::ExitedWithCode(5), "");
}

TEST_F(ExitStatus, DeadlineIsSix) {
  // `a` never stops; the real clock's deadline is short, a bounded wait.
  auto row = [] {
    auto spec = root_spec();
    spec.children = {stubborn("a"), raiser("b")};
    auto o = options();
    o.stop_deadline = std::chrono::milliseconds(50);
    std::_Exit(to_int(run_service(std::move(spec), o)));  // _Exit: see SecondSignalIsFive
  };
  EXPECT_EXIT(row(), ::testing::ExitedWithCode(6), "");
}

TEST_F(ExitStatus, InvalidSpecIsSeventyEight) {
  auto row = [] {
    auto spec = root_spec();
    spec.children = {server("a"), server("a")};  // duplicate id
    std::exit(to_int(run_service(std::move(spec), options())));
  };
  EXPECT_EXIT(row(), ::testing::ExitedWithCode(78), "");
}

}  // namespace
