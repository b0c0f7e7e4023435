// systemd notifications against a real AF_UNIX datagram socket that the test binds and passes
// as NOTIFY_SOCKET: READY=1 once the root's children have started, WATCHDOG=1 every half
// WATCHDOG_USEC on the manual clock (from the root's executor), STOPPING=1 on a signal.

#include "children.hpp"

#include <backplane/service/run_service.hpp>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace backplane;
using namespace backplane::test;

/// A bound datagram socket in a fresh temporary directory; what systemd listens on.
class notify_socket {
 public:
  notify_socket() {
    char dir_template[] = "/tmp/backplane-notify-XXXXXX";
    dir_ = ::mkdtemp(dir_template);
    path_ = dir_ + "/notify";
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    bound_ = ::bind(fd_, reinterpret_cast<sockaddr const*>(&addr), sizeof(addr)) == 0;
  }
  ~notify_socket() {
    ::close(fd_);
    std::filesystem::remove_all(dir_);
  }
  notify_socket(notify_socket const&) = delete;
  notify_socket& operator=(notify_socket const&) = delete;

  [[nodiscard]] bool bound() const { return bound_; }
  [[nodiscard]] std::string const& path() const { return path_; }

  /// Every datagram received so far (never blocks).
  std::vector<std::string> take() {
    std::vector<std::string> out;
    char buf[4096];
    for (;;) {
      auto n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n < 0) break;
      out.emplace_back(buf, static_cast<std::size_t>(n));
    }
    return out;
  }

 private:
  std::string dir_;
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
};

bool starts_with(std::string const& s, std::string const& prefix) {
  return s.rfind(prefix, 0) == 0;
}

class SdNotify : public ::testing::Test {
 protected:
  notify_socket sock;
  boost::asio::io_context ctx;
  std::shared_ptr<manual_clock> clock = std::make_shared<manual_clock>();
  std::optional<service_exit> status;

  void SetUp() override {
    ASSERT_TRUE(sock.bound());
    ::setenv("NOTIFY_SOCKET", sock.path().c_str(), 1);
    ::unsetenv("WATCHDOG_PID");
  }
  void TearDown() override {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
  }

  void run(supervisor_spec s) {
    service_options o;
    o.logger = muted_logger();
    async_run_service(ctx, std::move(s), o, [this](service_exit e) { status = e; });
    run_until_idle(ctx);
  }
};

TEST_F(SdNotify, ReadyOnceStartedThenStoppingOnSigterm) {
  std::vector<std::string> log;
  auto s = root_spec(clock);
  auto b = server("b", &log);
  auto start_b = b.start;
  std::vector<std::string> seen_at_b_start;
  b.start = [&, start_b](child_context& c) {
    // Nothing has been sent while the children are still starting.
    seen_at_b_start = sock.take();
    return start_b(c);
  };
  s.children = {server("a", &log), b};
  run(std::move(s));
  EXPECT_TRUE(seen_at_b_start.empty());
  auto got = sock.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_TRUE(starts_with(got[0], "READY=1\nSTATUS=app")) << got[0];

  std::raise(SIGTERM);
  run_until_idle(ctx);
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, service_exit::clean);
  got = sock.take();
  ASSERT_EQ(got.size(), 2U);
  EXPECT_TRUE(starts_with(got[0], "STOPPING=1\nSTATUS=stopping")) << got[0];
  EXPECT_EQ(got[1], "STATUS=ended: clean");
}

TEST_F(SdNotify, WatchdogPingsAtHalfTheIntervalUntilStopping) {
  ::setenv("WATCHDOG_USEC", "4000000", 1);  // 4 s: a ping every 2 s
  auto s = root_spec(clock);
  s.children = {server("a")};
  run(std::move(s));
  auto got = sock.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_TRUE(starts_with(got[0], "READY=1"));

  clock->advance(std::chrono::seconds(2) - std::chrono::nanoseconds(1));
  run_until_idle(ctx);
  EXPECT_TRUE(sock.take().empty());
  clock->advance(std::chrono::nanoseconds(1));
  run_until_idle(ctx);
  got = sock.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_TRUE(starts_with(got[0], "WATCHDOG=1\n")) << got[0];
  // And again two seconds later.
  clock->advance(std::chrono::seconds(2));
  run_until_idle(ctx);
  got = sock.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_TRUE(starts_with(got[0], "WATCHDOG=1\n")) << got[0];

  std::raise(SIGTERM);
  run_until_idle(ctx);
  ASSERT_TRUE(status);
  got = sock.take();
  ASSERT_FALSE(got.empty());
  EXPECT_TRUE(starts_with(got[0], "STOPPING=1"));
  // No ping once stopping, however long it takes.
  clock->advance(std::chrono::seconds(60));
  run_until_idle(ctx);
  for (auto const& m : sock.take()) EXPECT_FALSE(starts_with(m, "WATCHDOG=1")) << m;
}

TEST_F(SdNotify, NoWatchdogWhenSystemdDoesNotAskForIt) {
  auto s = root_spec(clock);
  s.children = {server("a")};
  run(std::move(s));
  (void)sock.take();
  clock->advance(std::chrono::hours(1));
  run_until_idle(ctx);
  EXPECT_TRUE(sock.take().empty());
  EXPECT_EQ(clock->pending(), 0U);
  std::raise(SIGTERM);
  run_until_idle(ctx);
  EXPECT_TRUE(status);
}

TEST_F(SdNotify, SilentWhenDisabled) {
  auto s = root_spec(clock);
  s.children = {server("a")};
  service_options o;
  o.logger = muted_logger();
  o.systemd = false;
  async_run_service(ctx, std::move(s), o, [this](service_exit e) { status = e; });
  run_until_idle(ctx);
  std::raise(SIGTERM);
  run_until_idle(ctx);
  EXPECT_TRUE(status);
  EXPECT_TRUE(sock.take().empty());
}

}  // namespace
