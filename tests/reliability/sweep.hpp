#pragma once
// Fault-injection sweeps: run a cycle again and again, the n-th allocation
// failing with std::bad_alloc, n = 1, 2, ... until a run no longer reaches
// the n-th allocation. Each run is a forked child process, so that a run
// that ends in std::terminate (or hangs: an alarm kills it) is seen and
// classified instead of ending the test.
//
// A cycle returns `not_reached` (the armed allocation never happened: the
// sweep is over), `handled` (it happened and the outcome was one the library
// documents), or `broken` with a message on stderr.

#include "reliability/alloc_counter.hpp"

#include <sys/wait.h>
#include <unistd.h>
#include <csignal>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace backplane::test {

enum cycle_result : int { not_reached = 10, handled = 11, broken = 12 };

struct sweep_report {
  int points = 0;  ///< allocation points swept
  std::map<std::string, int> outcomes;
  std::vector<std::string> problems;  ///< "n=..: what happened"
};

/// The message with which the library terminates where it documents that it
/// must (see docs/reliability.md): a terminate carrying it is the documented
/// boundary; any other is a problem.
inline constexpr char const* documented_fatal = "backplane: fatal:";

/// Runs `cycle(n)` in a child process for n = 1.. until it returns
/// not_reached (or `max_points`). The cycle names its outcome on a line
/// "outcome: <name>" (e.g. "outcome: restarted"), for the report.
inline sweep_report sweep(std::function<int(std::uint64_t)> const& cycle, int max_points,
                          unsigned alarm_seconds = 20) {
  sweep_report rep;
  for (std::uint64_t n = 1; n <= static_cast<std::uint64_t>(max_points); ++n) {
    int out[2];
    if (pipe(out) != 0) {
      rep.problems.push_back("pipe failed");
      return rep;
    }
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
      close(out[0]);
      dup2(out[1], 1);
      dup2(out[1], 2);
      alarm(alarm_seconds);  // a hang ends as SIGALRM
      int r = cycle(n);
      std::fflush(nullptr);
      _exit(r);
    }
    close(out[1]);
    std::string text;
    char buf[4096];
    for (;;) {
      ssize_t k = read(out[0], buf, sizeof buf);
      if (k <= 0) break;
      text.append(buf, static_cast<std::size_t>(k));
    }
    close(out[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    std::string const where = "n=" + std::to_string(n) + ": ";
    if (WIFEXITED(status) && WEXITSTATUS(status) == not_reached) break;
    ++rep.points;
    if (WIFEXITED(status) && WEXITSTATUS(status) == handled) {
      // The cycle's verdict is its line "outcome: <name>"; logs may surround it.
      auto at = text.find("outcome: ");
      auto name = at == std::string::npos ? std::string("?") : text.substr(at + 9);
      ++rep.outcomes[name.substr(0, name.find('\n'))];
    } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
      rep.problems.push_back(where + "hang\n" + text);
    } else if (WIFSIGNALED(status) && text.find(documented_fatal) != std::string::npos) {
      ++rep.outcomes["documented-terminate"];
    } else if (WIFSIGNALED(status)) {
      rep.problems.push_back(where + "killed by signal " + std::to_string(WTERMSIG(status)) + "\n" +
                             text);
    } else {
      rep.problems.push_back(where + "broken (exit " + std::to_string(WEXITSTATUS(status)) + ")\n" +
                             text);
    }
  }
  return rep;
}

}  // namespace backplane::test
