// live_reactor: the I/O objects a real service keeps on its io_context, for the benchmarks.
//
// A context that has never held a timer or a socket has no reactor: Asio's scheduler then
// runs handlers back to back. Once any timer or socket exists on it, every pass through the
// handler queue also runs the reactor (an `epoll_wait` system call under the default epoll
// backend; a look at the completion ring under io_uring) whenever the queue is short, which is
// the usual case for a ping-pong. No real service runs without timers or sockets, so every
// headline case also runs with one of these alive on its context (rows named `.../reactor`).
//
// What it holds: a steady_timer pending one hour from now (as a service's idle or keep-alive
// timer) and a connected loopback TCP pair whose reading end has a receive outstanding (as a
// service's idle connection). Neither ever completes during a case.
//
// The pending operations are outstanding work: `run()` does not return while they exist.
// Drivers that use `run()` call `stop_waiting()` once their case is over (the timer's and the
// socket's waits then complete with operation_aborted, and run() can return); drivers that
// `poll()` until idle need nothing. The destructor closes everything.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace bench {

class live_reactor {
 public:
  explicit live_reactor(boost::asio::io_context& ctx)
      : timer_(ctx, std::chrono::hours(1)), acceptor_(ctx), client_(ctx), server_(ctx) {
    namespace ip = boost::asio::ip;
    boost::system::error_code ec;
    ip::tcp::endpoint const any(ip::address_v4::loopback(), 0);
    acceptor_.open(any.protocol(), ec);
    if (!ec) acceptor_.bind(any, ec);
    if (!ec) acceptor_.listen(1, ec);
    if (!ec) client_.connect(acceptor_.local_endpoint(), ec);
    if (!ec) acceptor_.accept(server_, ec);
    if (ec) {
      std::fprintf(stderr, "live_reactor: cannot open a loopback TCP pair: %s\n",
                   ec.message().c_str());
      std::abort();
    }
    timer_.async_wait([](boost::system::error_code) {});
    server_.async_read_some(boost::asio::buffer(&byte_, 1),
                            [](boost::system::error_code, std::size_t) {});
  }
  live_reactor(live_reactor const&) = delete;
  live_reactor& operator=(live_reactor const&) = delete;
  ~live_reactor() { stop_waiting(); }

  /// Cancels the pending waits, so that `run()` can return once the case is over.
  void stop_waiting() {
    boost::system::error_code ignored;
    timer_.cancel();
    server_.close(ignored);
    client_.close(ignored);
    acceptor_.close(ignored);
  }

 private:
  boost::asio::steady_timer timer_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::ip::tcp::socket client_;
  boost::asio::ip::tcp::socket server_;
  char byte_ = 0;
};

}  // namespace bench
