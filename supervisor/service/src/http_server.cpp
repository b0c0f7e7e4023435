// http_server: accept loop, one coroutine per connection, requests with a deadline and a size
// limit, answers from the root's runtime API awaited with a deadline.

#include "http_server.hpp"

#include "endpoints.hpp"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <deque>
#include <optional>
#include <tuple>

namespace backplane::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// Starts a runtime API call with a reply handler bound to the calling coroutine's executor,
/// and waits for the reply at most `deadline`. Empty when the supervisor did not answer in
/// time or has ended; a late reply is dropped. (The API's calls cannot be cancelled, so the
/// wait is a timer that the reply cancels.)
///
/// `start` is taken by reference and callers pass named objects: g++ 12 destroys twice some
/// temporaries that live across a co_await (a lambda holding a supervisor handle, here).
template <class T, class Start>
asio::awaitable<std::optional<T>> ask(Start const& start, std::chrono::nanoseconds deadline) {
  auto ex = co_await asio::this_coro::executor;
  struct pending {
    explicit pending(asio::any_io_executor e) : timer(std::move(e)) {}
    asio::steady_timer timer;
    std::optional<T> value;
  };
  auto p = std::make_shared<pending>(ex);
  p->timer.expires_after(deadline);
  start(asio::bind_executor(ex, [p](boost::system::error_code ec, T v) {
    if (!ec) p->value = std::move(v);
    p->timer.cancel();
  }));
  (void)co_await p->timer.async_wait(use_tuple);
  co_return std::move(p->value);
}

}  // namespace

/// One client connection: requests answered in order; `/events` turns it into a stream.
struct http_connection : std::enable_shared_from_this<http_connection> {
  http_connection(tcp::socket s, std::uint64_t i)
      : stream(std::move(s)), wake(stream.get_executor()), id(i) {}

  beast::tcp_stream stream;
  asio::steady_timer wake;         // an /events stream waits on it for reports
  std::deque<std::string> outbox;  // reports not yet sent (on the connection's strand)
  std::uint64_t id;
  bool closed = false;

  /// Closes the socket and wakes an /events wait; on the connection's strand.
  void close() {
    closed = true;
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.socket().close(ignored);
    wake.cancel();
  }
};

namespace {

using response = http::response<http::string_body>;

response make_response(http::status status, unsigned version, std::string body,
                       char const* type = "text/plain; charset=utf-8") {
  response res{status, version};
  res.set(http::field::server, "backplane");
  res.set(http::field::content_type, type);
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

asio::awaitable<tree_snapshot> snapshot(http_server const& server) {
  tree_snapshot s;
  auto const& root = server.root();
  s.root_path = root.path();
  auto handle = root;
  // The whole tree, each supervisor answering on its own executor; one deadline for all.
  auto const view = [&handle](auto h) { handle.async_tree_view(std::move(h)); };
  auto tree = co_await ask<tree_node>(view, server.options().livez_deadline);
  s.tree = std::move(tree);
  s.counters = server.state()->children();
  s.intensity_exceeded = server.state()->intensity_exceeded();
  if (server.options().pools) s.pools = server.options().pools->snapshot();
  co_return s;
}

asio::awaitable<response> answer(http_server const& server,
                                 http::request<http::empty_body> const& req) {
  auto const v = req.version();
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    auto res = make_response(http::status::method_not_allowed, v, "only GET is served here\n");
    res.set(http::field::allow, "GET, HEAD");
    co_return res;
  }
  std::string_view target = req.target();
  target = target.substr(0, target.find('?'));
  if (target == "/livez") {
    auto handle = server.root();
    auto const count = [&handle](auto h) { handle.async_count_children(std::move(h)); };
    auto counts = co_await ask<child_counts>(count, server.options().livez_deadline);
    if (counts) co_return make_response(http::status::ok, v, "ok\n");
    co_return make_response(
        http::status::service_unavailable, v,
        fmt::format(
            "the root supervisor {} did not answer within {}ms\n", server.root().path(),
            std::chrono::duration_cast<std::chrono::milliseconds>(server.options().livez_deadline)
                .count()));
  }
  if (target == "/readyz") {
    auto snap = co_await snapshot(server);
    auto r = check_ready(snap);
    if (r.ready) co_return make_response(http::status::ok, v, "ready\n");
    std::string body = "not ready:\n";
    for (auto const& reason : r.reasons) body += "- " + reason + "\n";
    co_return make_response(http::status::service_unavailable, v, std::move(body));
  }
  if (target == "/tree") {
    auto snap = co_await snapshot(server);
    co_return make_response(http::status::ok, v, tree_json(snap), "application/json");
  }
  if (target == "/metrics") {
    auto snap = co_await snapshot(server);
    co_return make_response(http::status::ok, v, metrics_text(snap),
                            "text/plain; version=0.0.4; charset=utf-8");
  }
  if (target == "/") {
    auto snap = co_await snapshot(server);
    auto reports = server.state()->last_reports();
    co_return make_response(http::status::ok, v, live_page(page_state_json(snap, reports)),
                            "text/html; charset=utf-8");
  }
  co_return make_response(http::status::not_found, v,
                          "not found: try /livez, /readyz, /tree, /metrics, /events or /\n");
}

/// `/events`: server-sent events, the kept reports first, then each new one as it happens.
/// Takes its handles by reference (see `ask`); the caller's frame holds them.
asio::awaitable<void> stream_events(std::shared_ptr<http_server> const& server,
                                    std::shared_ptr<http_connection> const& conn,
                                    unsigned version) {
  http::response<http::empty_body> head{http::status::ok, version};
  head.set(http::field::server, "backplane");
  head.set(http::field::content_type, "text/event-stream");
  head.set(http::field::cache_control, "no-store");
  head.keep_alive(true);
  http::response_serializer<http::empty_body> sr{head};
  conn->stream.expires_never();
  auto [ec, n] = co_await http::async_write_header(conn->stream, sr, use_tuple);
  if (ec) co_return;
  auto format = [](tree_state::report const& r) {
    return fmt::format("id: {}\nevent: report\ndata: {}\n\n", r.seq, r.json);
  };
  // Reports arrive on the recording supervisor's thread: handed to this connection's strand.
  std::weak_ptr<http_connection> weak = conn;
  auto ex = conn->stream.get_executor();
  auto subscription = server->state()->subscribe([weak, ex, format](tree_state::report const& r) {
    asio::post(ex, [weak, text = format(r)]() mutable {
      if (auto c = weak.lock()) {
        c->outbox.push_back(std::move(text));
        c->wake.cancel();
      }
    });
  });
  for (auto const& r : server->state()->last_reports()) conn->outbox.push_back(format(r));
  while (!conn->closed) {
    while (!conn->outbox.empty() && !conn->closed) {
      auto text = std::move(conn->outbox.front());
      conn->outbox.pop_front();
      // A client that stops reading is dropped after the request deadline.
      conn->stream.expires_after(server->options().request_deadline);
      auto [wec, wn] = co_await asio::async_write(conn->stream, asio::buffer(text), use_tuple);
      if (wec) co_return;
    }
    conn->stream.expires_never();
    conn->wake.expires_at(asio::steady_timer::time_point::max());
    (void)co_await conn->wake.async_wait(use_tuple);
  }
}

asio::awaitable<void> serve(std::shared_ptr<http_server> server,
                            std::shared_ptr<http_connection> conn) {
  auto const& o = server->options();
  beast::flat_buffer buffer(o.max_request_bytes);
  while (!conn->closed) {
    http::request_parser<http::empty_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(o.max_request_bytes));
    // A GET has no body; one that comes with a body is too big (answered 400 below).
    parser.body_limit(0);
    conn->stream.expires_after(o.request_deadline);
    auto [ec, n] = co_await http::async_read(conn->stream, buffer, parser, use_tuple);
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof || conn->closed) {
      break;  // gone, too slow, or closed by stop(): nothing to answer
    }
    if (ec) {
      auto res = make_response(http::status::bad_request, 11,
                               fmt::format("bad request: {}\n", ec.message()));
      res.keep_alive(false);
      conn->stream.expires_after(o.request_deadline);
      (void)co_await http::async_write(conn->stream, res, use_tuple);
      break;
    }
    auto const& req = parser.get();
    if (req.method() == http::verb::get && req.target() == "/events") {
      co_await stream_events(server, conn, req.version());
      break;
    }
    response res = co_await answer(*server, req);
    res.keep_alive(req.keep_alive());
    bool const head_only = req.method() == http::verb::head;
    conn->stream.expires_after(o.request_deadline);
    boost::system::error_code wec;
    if (head_only) {
      http::response_serializer<http::string_body> sr{res};
      std::tie(wec, n) = co_await http::async_write_header(conn->stream, sr, use_tuple);
    } else {
      std::tie(wec, n) = co_await http::async_write(conn->stream, res, use_tuple);
    }
    if (wec || !res.keep_alive()) break;
  }
  if (!conn->closed) conn->close();
}

}  // namespace

std::shared_ptr<http_server> http_server::start(asio::io_context& ctx, http_options options,
                                                supervisor root,
                                                std::shared_ptr<tree_state> state) {
  auto s =
      std::make_shared<http_server>(ctx, std::move(options), std::move(root), std::move(state));
  auto const address = asio::ip::make_address(s->options_.address);
  tcp::endpoint const ep(address, s->options_.port);
  s->acceptor_.open(ep.protocol());
  s->acceptor_.set_option(tcp::acceptor::reuse_address(true));
  s->acceptor_.bind(ep);
  s->acceptor_.listen();
  if (s->options_.on_listen) s->options_.on_listen(s->acceptor_.local_endpoint());
  asio::post(s->strand_, [s] { s->accept(); });
  return s;
}

http_server::http_server(asio::io_context& ctx, http_options options, supervisor root,
                         std::shared_ptr<tree_state> state)
    : ctx_(ctx),
      options_(std::move(options)),
      root_(std::move(root)),
      state_(std::move(state)),
      strand_(asio::make_strand(ctx)),
      acceptor_(strand_) {}

http_server::~http_server() = default;

void http_server::accept() {
  // Each connection gets a strand of its own, so a slow client holds nobody else up.
  acceptor_.async_accept(
      asio::make_strand(ctx_),
      [self = shared_from_this()](boost::system::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted || !self->acceptor_.is_open()) return;
        if (!ec) {
          std::shared_ptr<http_connection> conn;
          {
            std::lock_guard lock(self->connections_mutex_);
            if (self->stopped_) return;
            conn = std::make_shared<http_connection>(std::move(socket), self->next_id_++);
            self->connections_.emplace(conn->id, conn);
          }
          auto ex = conn->stream.get_executor();
          asio::co_spawn(ex, serve(self, conn), [self, id = conn->id](std::exception_ptr) {
            // An exception (out of memory, say) ends this connection only.
            self->forget(id);
          });
        }
        // A failed accept (too many open files, say) is not the tree's problem: go on.
        self->accept();
      });
}

void http_server::forget(std::uint64_t id) {
  std::lock_guard lock(connections_mutex_);
  connections_.erase(id);
}

void http_server::stop() {
  std::map<std::uint64_t, std::weak_ptr<http_connection>> open;
  {
    std::lock_guard lock(connections_mutex_);
    stopped_ = true;
    open.swap(connections_);
  }
  asio::post(strand_, [self = shared_from_this()] {
    boost::system::error_code ignored;
    self->acceptor_.close(ignored);
  });
  for (auto const& [id, weak] : open) {
    if (auto c = weak.lock()) {
      asio::post(c->stream.get_executor(), [c] { c->close(); });
    }
  }
}

}  // namespace backplane::detail
