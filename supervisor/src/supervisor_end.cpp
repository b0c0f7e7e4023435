// The supervisor's end: a clean finish, or a crash of its own bookkeeping,
// and the answers to those waiting for it.

#include "supervisor_impl.hpp"

#include <boost/asio/post.hpp>

#include <exception>

namespace asio = boost::asio;

namespace backplane::detail {

void supervisor_impl::crashed(std::exception_ptr e) noexcept {
  if (ended_) return;
  ended_ = true;
  stopping_ = true;
  exit_.fault = fault::error();
  exit_.failed_reports = report_failures_;
  deadline_->clear();
  if (home_) {
    // A nested supervisor: its life rethrows, and the parent disconnects
    // the device with fault::error and this cause.
    *home_ = std::move(dev_);
  } else if (dev_.valid()) {
    dev_.disconnect(fault::error(), e);
  }
  auto waiters = std::move(exit_waiters_);
  for (auto& h : waiters) {
    try {
      std::move(h)(boost::system::error_code{}, exit_);
    } catch (...) {
      // A waiter we cannot tell (std::bad_alloc dispatching its reply) is
      // destroyed unanswered: Asio's rule for a handler that will never run.
    }
  }
}

void supervisor_impl::finish() {
  ended_ = true;
  exit_.failed_reports = report_failures_;
  deadline_->clear();
  if (home_) {
    // A nested supervisor's run hands the device back; start_nested's body
    // disconnects it, with the reason in an exception if we gave up.
    *home_ = std::move(dev_);
  } else if (dev_.valid()) {
    if (exit_.intensity_exceeded) {
      // Whoever monitors the root hears why it gave up.
      dev_.disconnect(*exit_.fault,
                      std::make_exception_ptr(restart_intensity_exceeded(give_up_text())));
    } else {
      dev_.disconnect(exit_.fault);
    }
  }
  auto waiters = std::move(exit_waiters_);
  for (auto& h : waiters) {
    asio::post(ex_, [h = std::move(h), e = exit_]() mutable {
      std::move(h)(boost::system::error_code{}, std::move(e));
    });
  }
}

}  // namespace backplane::detail
