#pragma once
// http_server: the service's HTTP endpoints (Beast), one coroutine per connection.

#include "tree_state.hpp"

#include <backplane/service/run_service.hpp>
#include <backplane/supervisor/supervisor.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

namespace backplane::detail {

struct http_connection;

/// Listens on `http_options`' address and answers GET /livez, /readyz, /tree, /metrics,
/// /events and /. Every answer about the tree comes from the root's runtime API (its tree view,
/// each supervisor answering on its own executor), awaited with a deadline, from the events the
/// service's observer recorded, and from the registered pools' own stats; nothing here locks or
/// blocks a supervisor.
///
/// Each connection runs on its own strand; a request must arrive whole within
/// `request_deadline` and fit in `max_request_bytes`, else the connection is answered 400 (too
/// big, malformed) or closed (too slow), and the tree never hears of it.
///
/// Thread-safety: `stop` may be called from any thread.
class http_server : public std::enable_shared_from_this<http_server> {
 public:
  /// Binds and starts accepting. Throws boost::system::system_error when the address cannot
  /// be bound (in use, not an address of this host, not an IP literal).
  static std::shared_ptr<http_server> start(boost::asio::io_context& ctx, http_options options,
                                            supervisor root, std::shared_ptr<tree_state> state);

  http_server(boost::asio::io_context& ctx, http_options options, supervisor root,
              std::shared_ptr<tree_state> state);
  ~http_server();

  /// Closes the listening socket and every connection (an /events stream included).
  void stop();

  // Used by the connections.
  [[nodiscard]] http_options const& options() const { return options_; }
  [[nodiscard]] supervisor const& root() const { return root_; }
  [[nodiscard]] std::shared_ptr<tree_state> const& state() const { return state_; }

 private:
  void accept();
  void forget(std::uint64_t id);

  boost::asio::io_context& ctx_;
  http_options options_;
  supervisor root_;
  std::shared_ptr<tree_state> state_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::ip::tcp::acceptor acceptor_;

  std::mutex connections_mutex_;
  bool stopped_ = false;
  std::uint64_t next_id_ = 0;
  std::map<std::uint64_t, std::weak_ptr<http_connection>> connections_;

  friend struct http_connection;
};

}  // namespace backplane::detail
