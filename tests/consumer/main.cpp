// Links two devices through the installed package, drops one and checks that
// the other heard it. Exit code 0 when it did.

#include <backplane/backplane.hpp>

#include <fmt/core.h>

#include <optional>
#include <string>

int main() {
  backplane::device watcher;
  std::optional<backplane::device> watched(std::in_place);
  watcher.link(*watched, backplane::link_mode::monitor);
  auto const id = watched->id();
  watched.reset();  // destroyed while connected: a drop

  auto m = watcher.try_receive();
  if (!m) {
    fmt::print("consumer: no message\n");
    return 1;
  }
  auto const* gone = backplane::as_disconnected(*m);
  auto const expected = fmt::format("disconnected {} (drop)", id);
  auto const got = fmt::format("{}", *m);
  fmt::print("consumer: heard \"{}\"\n", got);
  if (!gone || gone->sender != id || gone->fault != backplane::fault::drop() || got != expected) {
    fmt::print("consumer: expected \"{}\"\n", expected);
    return 1;
  }
  return 0;
}
