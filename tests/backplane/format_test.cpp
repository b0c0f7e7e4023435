// fmt output of every public value type, and describe().

#include <backplane/backplane.hpp>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace {

using namespace backplane;

struct not_formattable {};

struct custom_error {
  int code;
};

}  // namespace

template <>
struct fmt::formatter<custom_error> : fmt::formatter<int> {
  auto format(custom_error const& e, fmt::format_context& ctx) const {
    return fmt::format_to(ctx.out(), "custom {}", e.code);
  }
};

namespace {

TEST(Format, DeviceId) {
  EXPECT_EQ(fmt::format("{}", device_id(42)), "#42");
  EXPECT_EQ(fmt::format("{}", device_id{}), "#0");
  EXPECT_EQ(to_string(device_id(7)), "#7");
  device d;
  // Appended rather than `"#" + std::to_string(...)`: g++ 12 at -O3 reports a false
  // -Wrestrict inside char_traits for the literal + string form (GCC bug 105651).
  std::string expected = "#";
  expected += std::to_string(d.id().value());
  EXPECT_EQ(fmt::format("{}", d.id()), expected);
}

TEST(Format, LinkMode) {
  EXPECT_EQ(fmt::format("{}", link_mode::monitor), "monitor");
  EXPECT_EQ(fmt::format("{}", link_mode::notify), "notify");
  EXPECT_EQ(fmt::format("{}", link_mode::peer), "peer");
  EXPECT_EQ(to_string(link_mode::peer), "peer");
}

TEST(Format, Fault) {
  EXPECT_EQ(fmt::format("{}", fault::drop()), "drop");
  EXPECT_EQ(fmt::format("{}", fault::error()), "error");
  EXPECT_EQ(fmt::format("{}", fault::cascade(device_id(7))), "cascade from #7");
}

TEST(Format, Message) {
  EXPECT_EQ(fmt::format("{}", message(disconnected{device_id(3), std::nullopt})),
            "disconnected #3 cleanly");
  EXPECT_EQ(fmt::format("{}", message(disconnected{device_id(3), fault::error()})),
            "disconnected #3 (error)");
  EXPECT_EQ(fmt::format("{}", message(disconnected{device_id(3), fault::drop()})),
            "disconnected #3 (drop)");
  EXPECT_EQ(fmt::format("{}", message(disconnected{device_id(3), fault::cascade(device_id(9))})),
            "disconnected #3 (cascade from #9)");
  EXPECT_EQ(fmt::format("{}", message(backplane::shutdown{device_id(1)})),
            "shutdown requested by #1");
  // With a cause, the exception is described too.
  EXPECT_EQ(fmt::format("{}", message(disconnected{
                                  device_id(3), fault::error(),
                                  std::make_exception_ptr(std::runtime_error("disk full"))})),
            "disconnected #3 (error: std::runtime_error: disk full)");
  // Each alternative has its own formatter, spelled the same.
  EXPECT_EQ(fmt::format("{}", disconnected{device_id(4), fault::drop()}), "disconnected #4 (drop)");
  EXPECT_EQ(fmt::format("{}", disconnected{device_id(4), std::nullopt}), "disconnected #4 cleanly");
  EXPECT_EQ(fmt::format("{}", backplane::shutdown{device_id(2)}), "shutdown requested by #2");
}

TEST(Format, LinkError) {
  EXPECT_EQ(fmt::format("{}", link_error::device_down), "device_down");
  EXPECT_EQ(fmt::format("{}", link_error::link_down), "link_down");
}

TEST(Format, CrashOfEveryKind) {
  EXPECT_EQ(fmt::format("{}", crash<int>::power_off(device_id(1))), "power_off by #1");
  EXPECT_EQ(
      fmt::format("{}", crash<int>::panic(std::make_exception_ptr(std::runtime_error("boom")))),
      "panic: std::runtime_error: boom");
  EXPECT_EQ(fmt::format("{}", crash<int>::error(7)), "error: 7");
  EXPECT_EQ(fmt::format("{}", crash<std::string>::error("disk full")), "error: disk full");
  EXPECT_EQ(fmt::format("{}", crash<custom_error>::error(custom_error{3})), "error: custom 3");
  EXPECT_EQ(fmt::format("{}", crash<not_formattable>::error(not_formattable{})), "error");
  EXPECT_EQ(fmt::format("{}", crash<int>::cascade(device_id(7), fault::error())),
            "cascade from #7 (error)");
  EXPECT_EQ(fmt::format("{}", crash<int>::cascade(device_id(7), fault::drop())),
            "cascade from #7 (drop)");
  EXPECT_EQ(fmt::format("{}", crash<int>::cascade(device_id(7), fault::cascade(device_id(2)))),
            "cascade from #7 (cascade from #2)");
}

TEST(Format, AcceptsStringSpecs) {
  EXPECT_EQ(fmt::format("[{:>5}]", device_id(42)), "[  #42]");
  EXPECT_EQ(fmt::format("[{:<8}]", link_mode::peer), "[peer    ]");
  EXPECT_EQ(fmt::format("[{:^7}]", fault::drop()), "[ drop  ]");
}

struct plain_thrown {};

TEST(Describe, NamesTheTypeAndWhat) {
  EXPECT_EQ(describe(nullptr), "none");
  EXPECT_EQ(describe(std::make_exception_ptr(std::logic_error("bad"))), "std::logic_error: bad");
  EXPECT_EQ(describe(std::make_exception_ptr(42)), "int");
  EXPECT_NE(describe(std::make_exception_ptr(plain_thrown{})).find("plain_thrown"),
            std::string::npos);
}

}  // namespace
