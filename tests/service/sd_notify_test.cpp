// systemd notifications against a real AF_UNIX datagram socket that the test binds and passes
// as NOTIFY_SOCKET: READY=1 once the root's children have started, WATCHDOG=1 every half
// WATCHDOG_USEC on the manual clock (from the root's executor), STOPPING=1 on a signal.

#include "children.hpp"

#include <backplane/service/run_service.hpp>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
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

  /// Waits for the next datagram, at most `limit` (a safety net, not a timing assertion);
  /// empty if none came.
  std::optional<std::string> wait_one(std::chrono::milliseconds limit) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) != 1) return std::nullopt;
    char buf[4096];
    auto n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }

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

/// GET `target` with a Beast client; the answer's status code.
unsigned http_status(boost::asio::ip::tcp::endpoint const& ep, std::string const& target) {
  namespace http = boost::beast::http;
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.connect(ep);
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  http::write(socket, req);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res);
  return res.result_int();
}

TEST_F(SdNotify, AWedgedRootStopsTheWatchdogAndFailsLivezUntilReleased) {
  // Two threads run the context: a start function blocks one of them inside the root's strand
  // (as a wedged tree would) until the test releases it; the other serves HTTP. The watchdog's
  // timer falls due on the root's strand behind the blocked handler, so no WATCHDOG=1 can go
  // out; /livez answers 503 once livez_deadline (real, short: a bounded wait) has passed.
  ::setenv("WATCHDOG_USEC", "4000000", 1);  // a ping every 2 s of the manual clock
  auto s = root_spec(clock);
  s.child_strands = true;
  s.children = {server("a")};
  std::mutex mu;
  std::optional<supervisor> root;
  s.on_start = [&](supervisor const& h) {
    std::lock_guard lock(mu);
    root = h;
  };
  std::promise<boost::asio::ip::tcp::endpoint> listening;
  service_options o;
  o.logger = muted_logger();
  o.http = http_options{};
  o.http->port = 0;
  o.http->livez_deadline = std::chrono::milliseconds(200);
  o.http->on_listen = [&](boost::asio::ip::tcp::endpoint ep) { listening.set_value(ep); };
  std::promise<service_exit> ended;
  async_run_service(ctx, std::move(s), o, [&](service_exit e) { ended.set_value(e); });
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) threads.emplace_back([this] { ctx.run(); });
  auto const ep = listening.get_future().get();
  constexpr auto limit = std::chrono::seconds(60);  // safety net only
  auto first = sock.wait_one(limit);
  ASSERT_TRUE(first && starts_with(*first, "READY=1")) << first.value_or("nothing");

  clock->advance(std::chrono::seconds(2));
  auto ping = sock.wait_one(limit);
  ASSERT_TRUE(ping && starts_with(*ping, "WATCHDOG=1\n")) << ping.value_or("nothing");
  // A round trip through the root's strand: the ping's handler has scheduled the next one.
  EXPECT_EQ(http_status(ep, "/livez"), 200U);

  // Wedge the root: start_child runs the start function on the root's strand.
  std::promise<void> blocked;
  std::promise<void> release;
  auto released = release.get_future().share();
  auto wedge =
      worker("wedge", [&blocked, released](child_context&) -> boost::asio::awaitable<work_result> {
        blocked.set_value();
        released.wait();
        return serve("wedge", nullptr);
      });
  std::optional<supervisor> handle;
  {
    std::lock_guard lock(mu);
    handle = root;
  }
  ASSERT_TRUE(handle);
  auto started = handle->async_start_child(wedge, boost::asio::use_future);
  blocked.get_future().get();

  for (int i = 0; i < 3; ++i) clock->advance(std::chrono::seconds(2));
  EXPECT_EQ(http_status(ep, "/livez"), 503U);
  // The watchdog's handler is queued behind the blocked one: nothing was sent.
  EXPECT_TRUE(sock.take().empty());

  release.set_value();
  EXPECT_TRUE(started.get());  // the wedge's device
  ping = sock.wait_one(limit);
  ASSERT_TRUE(ping && starts_with(*ping, "WATCHDOG=1\n")) << ping.value_or("nothing");
  EXPECT_EQ(http_status(ep, "/livez"), 200U);
  clock->advance(std::chrono::seconds(2));
  ping = sock.wait_one(limit);
  EXPECT_TRUE(ping && starts_with(*ping, "WATCHDOG=1\n")) << ping.value_or("nothing");

  std::raise(SIGTERM);
  EXPECT_EQ(ended.get_future().get(), service_exit::clean);
  ctx.stop();
  for (auto& t : threads) t.join();
}

}  // namespace
