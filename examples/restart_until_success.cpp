// restart_until_success: a parent device restarts a failing child until it succeeds.
//
// The example from async-backplane's README, on Boost.Asio. The parent monitors
// each child it starts, so it hears how the child disconnected: with a fault
// (start another one) or cleanly (done). The child runs its job under
// `manage`, which turns the job's error into a fault its monitors hear.
//
// Everything runs on one thread, so the output is the same on every run.

#include <backplane/backplane.hpp>

#include <fmt/core.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/result.hpp>

#include <stdexcept>
#include <string>

namespace asio = boost::asio;
using backplane::device;
using backplane::link_mode;

namespace {

/// What the child's job returns: nothing when it worked, why not otherwise.
using job_result = boost::system::result<void, std::string>;

/// The attempt that finally works. Before it, the job fails the way a
/// service that is still starting up would.
constexpr int first_good_attempt = 3;
/// A parent that restarts forever hides a bug forever; ours gives up.
constexpr int max_attempts = 5;

/// The child's job: "your code goes here" in the seed.
asio::awaitable<job_result> connect_to_service(int attempt) {
  if (attempt < first_good_attempt)
    co_return job_result(boost::system::in_place_error, "connection refused");
  co_return job_result();
}

/// The child: runs its job under `manage`, which disconnects the device with
/// `fault::error()` if the job fails and cleanly if it succeeds.
asio::awaitable<void> child(device& self, int attempt) {
  auto const id = self.id();
  auto r = co_await backplane::manage(std::move(self), connect_to_service(attempt));
  if (r) {
    fmt::print("  child {}: connected\n", id);
  } else {
    fmt::print("  child {}: crashed: {}\n", id, r.error());
  }
}

/// The parent: start a child, wait to hear how it ended, restart it on a fault.
asio::awaitable<void> parent(device& self) {
  auto const ex = co_await asio::this_coro::executor;
  for (int attempt = 1; attempt <= max_attempts; ++attempt) {
    device kid;
    // Linked before it runs, so no way the child ends can go unheard.
    self.link(kid, link_mode::monitor);
    fmt::print("parent {}: attempt {}: starting child {}\n", self.id(), attempt, kid.id());
    backplane::spawn(ex, std::move(kid), [attempt](device& d) { return child(d, attempt); });

    auto m = co_await self.async_receive(asio::use_awaitable);
    fmt::print("parent {}: heard \"{}\"\n", self.id(), m);
    auto const* gone = backplane::as_disconnected(m);
    if (gone && !gone->fault) {
      fmt::print("parent {}: child succeeded on attempt {}, done\n", self.id(), attempt);
      co_return;  // spawn disconnects us cleanly
    }
  }
  // Escaping spawn's coroutine, this faults the parent: whoever monitors it hears.
  throw std::runtime_error("the child never succeeded");
}

}  // namespace

int main() {
  asio::io_context ctx;

  // main() watches the parent the same way the parent watches its children.
  device top;
  device observer;
  observer.link(top, link_mode::monitor);
  backplane::spawn(ctx, std::move(top), parent);

  // Returns once no coroutine is left waiting.
  ctx.run();

  auto m = observer.try_receive();
  if (!m) {
    fmt::print("main: the parent is still connected?\n");
    return 1;
  }
  fmt::print("main: heard \"{}\"\n", *m);
  auto const* gone = backplane::as_disconnected(*m);
  return gone && !gone->fault ? 0 : 1;
}
