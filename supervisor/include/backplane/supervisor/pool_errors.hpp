#pragma once
// pool_errc and job_crashed: how a dynamic supervisor's or a worker pool's
// operations fail.

#include <boost/system/error_code.hpp>

#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace backplane {

enum class pool_errc {
  /// dynamic_supervisor::async_start_child: `max_children` children already
  /// exist; terminate one or raise dynamic_supervisor_spec::max_children.
  max_children = 1,
  /// worker_pool::try_submit: the queue is full; use async_submit to wait for
  /// room, or raise worker_pool_spec::queue_capacity.
  queue_full,
  /// The pool is stopping or has stopped: it accepts no more jobs.
  stopping,
  /// The pool gave up (its workers crashed more than max_restarts times in
  /// period): every job queued or running then completes with this.
  pool_failed,
  /// The job threw, or its worker died under it. The completion's exception
  /// (a backplane::job_crashed) says how.
  job_crashed,
};

[[nodiscard]] boost::system::error_category const& pool_category() noexcept;

[[nodiscard]] inline boost::system::error_code make_error_code(pool_errc e) noexcept {
  return {static_cast<int>(e), pool_category()};
}

/// What a job's submitter receives when the job threw or its worker died
/// under it: the job's identity and the crash itself. `what()` reads
/// "job #17 (key 3) crashed: std::runtime_error: boom", so
/// `backplane::describe` on the completion's exception_ptr prints it all.
class job_crashed : public std::runtime_error {
 public:
  job_crashed(std::uint64_t sequence, std::optional<std::string> key, std::exception_ptr cause,
              std::string const& reason);
  /// The job's sequence number in its pool (1 for the first job submitted).
  [[nodiscard]] std::uint64_t sequence() const noexcept { return sequence_; }
  /// The job's routing key, as text, if it was submitted with one.
  [[nodiscard]] std::optional<std::string> const& key() const noexcept { return key_; }
  /// What the job threw; null when its worker died under it (a kill, a
  /// linked device's fault): `what()` then says how the worker ended.
  [[nodiscard]] std::exception_ptr const& cause() const noexcept { return cause_; }

 private:
  std::uint64_t sequence_;
  std::optional<std::string> key_;
  std::exception_ptr cause_;
};

}  // namespace backplane

template <>
struct boost::system::is_error_code_enum<backplane::pool_errc> : std::true_type {};
