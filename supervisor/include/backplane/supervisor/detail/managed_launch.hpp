#pragma once
// Not API. How a start function's managed work (an awaitable returning a
// result) reaches the compiled supervisor without the supervisor knowing its
// type: the one template step, co_spawn with a completion that says only
// "thrown, failed or succeeded", is made here, in the caller's translation
// unit; everything else is in supervisor/src.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/system/result.hpp>

#include <exception>
#include <memory>
#include <type_traits>
#include <utility>

namespace backplane::detail {

/// Where a managed work's end is delivered: the supervisor's record of one
/// incarnation. Called once, on the executor the work ran on.
class managed_end {
 public:
  virtual ~managed_end() = default;
  /// `thrown`: the exception that escaped the work, if any; `failed`: the
  /// work returned an error.
  virtual void work_ended(std::exception_ptr thrown, bool failed) = 0;
};

/// co_spawn's completion for a work returning `R` (a boost::system::result).
template <class R>
struct managed_done {
  std::shared_ptr<managed_end> to;
  void operator()(std::exception_ptr thrown, R r) const {
    to->work_ended(thrown, !thrown && r.has_error());
  }
};

/// A work not yet started, its type erased.
class managed_launch {
 public:
  virtual ~managed_launch() = default;
  /// co_spawns the work on `ex` with `slot` as its cancellation slot; its end
  /// goes to `to`. Called at most once.
  virtual void launch(boost::asio::any_io_executor const& ex, boost::asio::cancellation_slot slot,
                      std::shared_ptr<managed_end> to) = 0;
};

template <class T, class E>
class managed_launch_of final : public managed_launch {
 public:
  using result_type = boost::system::result<T, E>;
  static_assert(std::is_default_constructible_v<result_type>,
                "backplane: a managed work returning boost::system::result<T, E> needs a default-"
                "constructible T (co_spawn makes one when the work throws); return "
                "result<void, E> if the value is not needed");
  explicit managed_launch_of(boost::asio::awaitable<result_type> w) : work_(std::move(w)) {}
  void launch(boost::asio::any_io_executor const& ex, boost::asio::cancellation_slot slot,
              std::shared_ptr<managed_end> to) override {
    boost::asio::co_spawn(
        ex, std::move(work_),
        boost::asio::bind_cancellation_slot(slot, managed_done<result_type>{std::move(to)}));
  }

 private:
  boost::asio::awaitable<result_type> work_;
};

}  // namespace backplane::detail
