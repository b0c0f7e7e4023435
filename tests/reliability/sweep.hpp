#pragma once
// Fault-injection sweeps: run a cycle again and again, the n-th allocation
// failing with std::bad_alloc, n = 1, 2, ... until a run no longer reaches
// the n-th allocation. Each run is a forked child process, so that a run
// that ends in std::terminate (or hangs: an alarm kills it) is seen and
// classified instead of ending the test.
//
// Each cycle runs on a thread of its own, and its leak check compares the
// live allocations before the thread starts with those after it has been
// joined: per-thread caches (the core keeps up to 16 device-state blocks per
// thread, state_cache.cpp) are given back at thread exit, and a block still
// live after the join is a leak.
//
// A cycle returns `not_reached` (the armed allocation never happened: the
// sweep is over), `handled` (it happened and the outcome was one the library
// documents), or `broken` with a message on stderr.

#include "reliability/alloc_counter.hpp"

#include <backplane/device.hpp>

#include <dlfcn.h>
#include <execinfo.h>
#include <sys/wait.h>
#include <unistd.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <string>
#include <thread>
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

/// Asio's own boundary (docs/reliability.md): a strand whose invoker ends
/// with handlers still queued posts itself again from a destructor
/// (strand_executor_service::invoker's on_invoker_exit); when that post
/// cannot allocate, std::bad_alloc leaves a destructor and the process
/// terminates inside Asio. The child's terminate handler names it (the
/// executable exports its symbols, ENABLE_EXPORTS) so that the sweep tells it
/// apart from a terminate of the library's.
inline constexpr char const* asio_strand_fatal = "asio: fatal: a strand could not re-post itself";

/// Asio's other boundary: strand_executor_service::create_implementation
/// (make_strand) hands a new strand_impl to a shared_ptr; when the
/// shared_ptr's control block cannot be allocated, the half-made strand_impl
/// is deleted and its destructor locks a mutex it was never given (SIGSEGV).
inline constexpr char const* asio_make_strand_fatal =
    "asio: fatal: make_strand could not allocate its shared state";

/// True if a frame of this thread's stack is in a function whose (mangled)
/// name contains `what`.
inline bool on_stack(char const* what) {
  void* frames[64];
  int const k = backtrace(frames, 64);
  for (int i = 0; i < k; ++i) {
    Dl_info info{};
    if (dladdr(frames[i], &info) != 0 && info.dli_sname != nullptr &&
        std::strstr(info.dli_sname, what) != nullptr)
      return true;
  }
  return false;
}

inline void name_asio_terminate() {
  {
    void* warm[1];
    (void)backtrace(warm, 1);  // loads the unwinder now, not in a signal handler
  }
  std::signal(SIGSEGV, [](int) {
    if (on_stack("strand_executor_service21create_implementation")) {
      (void)!write(2, asio_make_strand_fatal, std::strlen(asio_make_strand_fatal));
      (void)!write(2, "\n", 1);
    }
    std::signal(SIGSEGV, SIG_DFL);
    std::raise(SIGSEGV);
  });
  std::set_terminate([] {
    if (on_stack("strand_executor_service7invoker"))
      std::fprintf(stderr, "%s\n", asio_strand_fatal);
    std::fflush(nullptr);
    std::abort();
  });
}

/// Runs `cycle(n)` on a fresh thread in a child process for n = 1.. until it returns
/// not_reached (or `max_points`). The cycle names its outcome on a line
/// "outcome: <name>" (e.g. "outcome: restarted"), for the report.
inline sweep_report sweep(std::function<int(std::uint64_t)> const& cycle, int max_points,
                          unsigned alarm_seconds = 20) {
  sweep_report rep;
  // BACKPLANE_SWEEP_N=<n>: only that point, still forked (a debugger
  // follows it with `set follow-fork-mode child`).
  std::uint64_t only = 0;
  if (char const* e = std::getenv("BACKPLANE_SWEEP_N")) only = std::strtoull(e, nullptr, 10);
  for (std::uint64_t n = only ? only : 1; n <= static_cast<std::uint64_t>(max_points); ++n) {
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
      name_asio_terminate();
      // glibc keeps a joined thread's stack, and the TLS block allocated
      // with it, for the next thread: a first thread takes that allocation.
      std::thread([] {}).join();
      std::int64_t const before = alloc::live();
      int r = broken;
      std::thread run([&] {
        // glibc aborts ("failed to register TLS destructor: out of memory")
        // when the registration of a thread_local's destructor cannot
        // allocate: the platform's limit, not the library's. The core's
        // per-thread cache registers on the thread's first device, so one
        // is made before the failure is armed.
        { device warm; }
        r = cycle(n);
      });
      run.join();
      if (r != broken && alloc::live() != before) {
        std::fprintf(stderr, "leak: %lld allocations still live after the cycle's thread ended\n",
                     static_cast<long long>(alloc::live() - before));
        r = broken;
      }
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
    } else if (WIFSIGNALED(status) && text.find(asio_strand_fatal) != std::string::npos) {
      ++rep.outcomes["asio-strand-terminate"];
    } else if ((WIFSIGNALED(status) && text.find(asio_make_strand_fatal) != std::string::npos) ||
               (text.find("strand_impl::~strand_impl") != std::string::npos &&
                text.find("strand_executor_service::create_implementation") != std::string::npos)) {
      // (The second form: AddressSanitizer's report of the same crash.)
      ++rep.outcomes["asio-make-strand-crash"];
    } else if (WIFSIGNALED(status)) {
      rep.problems.push_back(where + "killed by signal " + std::to_string(WTERMSIG(status)) + "\n" +
                             text);
    } else {
      rep.problems.push_back(where + "broken (exit " + std::to_string(WEXITSTATUS(status)) + ")\n" +
                             text);
    }
    if (only) break;
  }
  return rep;
}

}  // namespace backplane::test
