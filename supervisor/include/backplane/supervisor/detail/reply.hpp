#pragma once
// Not API. A completion handler that resolves its own executor while its type
// is still known (in the header) and dispatches itself there when called, so
// that compiled code can hold it behind any_completion_handler without Asio
// type-erasing the handler's executor (an allocation per reply). Keeps the
// handler's executor busy until then, as Asio requires of a pending
// operation. The same shape as supervisor::reply.

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include <type_traits>
#include <utility>

namespace backplane::detail {

template <class H>
struct reply {
  // Not named executor_type: Asio would take it for the associated executor.
  using target_executor = boost::asio::associated_executor_t<H, boost::asio::any_io_executor>;
  using allocator_type = boost::asio::associated_allocator_t<H>;
  H handler;
  boost::asio::executor_work_guard<target_executor> work;
  [[nodiscard]] allocator_type get_allocator() const noexcept {
    return boost::asio::get_associated_allocator(handler);
  }
  template <class... Args>
  void operator()(Args... args) {
    auto ex = work.get_executor();
    boost::asio::dispatch(boost::asio::bind_executor(
        ex, boost::asio::append(std::move(handler), std::move(args)...)));
    work.reset();
  }
};

/// `h` as an any_completion_handler<Sig> that runs on h's executor (or
/// `fallback`'s, if it has none) when called from anywhere.
template <class Sig, class H>
boost::asio::any_completion_handler<Sig> erase_reply(H&& h,
                                                     boost::asio::any_io_executor const& fallback) {
  auto ex = boost::asio::get_associated_executor(h, fallback);
  return boost::asio::any_completion_handler<Sig>(
      reply<std::decay_t<H>>{std::forward<H>(h), boost::asio::make_work_guard(ex)});
}

}  // namespace backplane::detail
