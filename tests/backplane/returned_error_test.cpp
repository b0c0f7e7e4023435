// returned_error: what an error returned by value says about itself.

#include <backplane/returned_error.hpp>

#include <gtest/gtest.h>
#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace {

using namespace backplane;

template <class E>
std::string what_of(E const& e) {
  try {
    std::rethrow_exception(make_returned_error(e));
  } catch (returned_error const& r) {
    return r.what();
  }
}

struct opaque_error {
  int x;
};

struct move_only_error {
  std::unique_ptr<int> p;
};

TEST(ReturnedError, ABoostErrorCodeGivesCategoryCodeAndMessage) {
  auto p = make_returned_error(boost::system::error_code(boost::asio::error::connection_refused));
  try {
    std::rethrow_exception(p);
  } catch (returned_error const& e) {
    EXPECT_EQ(e.how(), returned_error::kind::error_code);
    EXPECT_EQ(e.category(), "system");
    EXPECT_EQ(e.code(), static_cast<int>(boost::asio::error::connection_refused));
    EXPECT_EQ(e.message(), "Connection refused");
    EXPECT_STREQ(e.what(), "system: Connection refused");
  }
}

TEST(ReturnedError, AStdErrorCodeKeepsItsOwnCategory) {
  auto p = make_returned_error(std::make_error_code(std::errc::no_space_on_device));
  try {
    std::rethrow_exception(p);
  } catch (returned_error const& e) {
    EXPECT_EQ(e.category(), "generic");
    EXPECT_EQ(e.message(), "No space left on device");
    EXPECT_EQ(e.type_name(), "std::error_code");
  }
}

TEST(ReturnedError, AnErrorEnumIsAnErrorCode) {
  EXPECT_EQ(what_of(boost::asio::error::operation_aborted), "system: Operation canceled");
}

TEST(ReturnedError, WhatFmtFormatsIsFormatted) {
  EXPECT_EQ(what_of(std::string("disk full")), "disk full");
  EXPECT_EQ(what_of(42), "42");
  try {
    std::rethrow_exception(make_returned_error(std::string("x")));
  } catch (returned_error const& e) {
    EXPECT_EQ(e.how(), returned_error::kind::formatted);
    EXPECT_EQ(e.category(), "");
    EXPECT_EQ(e.code(), std::nullopt);
  }
}

TEST(ReturnedError, AnythingElseIsItsTypeName) {
  EXPECT_EQ(what_of(opaque_error{1}), "(anonymous namespace)::opaque_error");
  EXPECT_EQ(what_of(move_only_error{}), "(anonymous namespace)::move_only_error");
}

TEST(ReturnedError, DescribedOnceWhenManyThreadsAskAtOnce) {
  auto p = make_returned_error(std::string("shared"));
  std::atomic<int> right{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i) {
    ts.emplace_back([&] {
      try {
        std::rethrow_exception(p);
      } catch (returned_error const& e) {
        if (std::string(e.what()) == "shared") ++right;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(right.load(), 4);
}

}  // namespace
