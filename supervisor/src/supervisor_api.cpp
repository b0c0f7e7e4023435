// The runtime API's calls, as the supervisor handles them on its executor.

#include "supervisor_impl.hpp"

#include "reasons.hpp"

#include <boost/asio/post.hpp>

namespace asio = boost::asio;

namespace backplane::detail {

namespace {
// The handlers are supervisor::reply objects behind any_completion_handler:
// calling one dispatches it to its own executor.
template <class H, class... Args>
void complete(H h, asio::any_io_executor const& fallback, Args... args) {
  // Posted to the supervisor's executor first: never run inside a job of the
  // supervisor's loop.
  asio::post(fallback, [h = std::move(h), ... args = std::move(args)]() mutable {
    std::move(h)(std::move(args)...);
  });
}
/// For a call answered by the handler that the public API posted to us (so
/// never from inside the initiating function), outside any job: the handler
/// may run at once if its executor is ours, saving a trip through the queue.
template <class H, class... Args>
void complete_direct(H h, Args... args) {
  std::move(h)(std::move(args)...);
}
boost::system::error_code err(supervisor_errc e) { return make_error_code(e); }
}  // namespace

void supervisor_impl::api_start_child(child_spec spec, handler_t<child_start_result> h) {
  if (ended_ || stopping_)
    return complete(std::move(h), ex_, err(supervisor_errc::supervisor_down), child_start_result{});
  if (idle_ && jobs_.empty() && exits_.empty()) {
    // Parked at the top: nothing holds a child pointer, and we run in the
    // handler the API posted, so the reply may be dispatched.
    start_dynamic(std::move(spec), std::move(h), true);
    return;
  }
  auto call = std::make_shared<std::pair<child_spec, handler_t<child_start_result>>>(
      std::move(spec), std::move(h));
  enqueue([this, call]() -> asio::awaitable<void> {
    start_dynamic(std::move(call->first), std::move(call->second), false);
    co_return;
  });
}

void supervisor_impl::start_dynamic(child_spec spec, handler_t<child_start_result> h, bool direct) {
  child_start_result out;
  auto const reply = [&](boost::system::error_code ec) {
    if (direct) {
      complete_direct(std::move(h), ec, std::move(out));
    } else {
      complete(std::move(h), ex_, ec, std::move(out));
    }
  };
  if (stopping_) return reply(err(supervisor_errc::supervisor_down));
  if (child_record* r = find(spec.id)) {
    // OTP: a child waiting to restart is present, not running.
    bool const running = r->status == child_status::running;
    if (running) out.device = r->dev;
    return reply(err(running ? supervisor_errc::running : supervisor_errc::already_present));
  }
  child_record* r = add_record(std::move(spec));
  event_reason why;
  switch (start_incarnation(*r, why, &out.info)) {
    case start_outcome::started: out.device = r->dev; break;
    case start_outcome::ignored:
      out.ignored = true;
      // OTP: an ignored temporary child is not kept.
      if (r->spec.restart == restart_type::temporary) remove(r);
      break;
    case start_outcome::failed:
      report(supervisor_event_kind::start_error, r->spec.id, device_id{}, r->incarnation, why,
             supervisor_action::none, std::nullopt, "start_child: spec discarded");
      out.reason = std::move(why);
      remove(r);  // OTP: a failed dynamic start discards the spec
      return reply(err(supervisor_errc::start_failed));
  }
  reply(boost::system::error_code{});
}

void supervisor_impl::api_terminate_child(std::string id, void_handler_t h) {
  if (ended_ || stopping_)
    return complete(std::move(h), ex_, err(supervisor_errc::supervisor_down));
  auto shared_h = std::make_shared<void_handler_t>(std::move(h));
  enqueue([this, id = std::move(id), shared_h]() -> asio::awaitable<void> {
    if (stopping_) {
      complete(std::move(*shared_h), ex_, err(supervisor_errc::supervisor_down));
      co_return;
    }
    child_record* r = find(id);
    if (!r) {
      complete(std::move(*shared_h), ex_, err(supervisor_errc::not_found));
      co_return;
    }
    co_await stop_child(*r);
    if (r->spec.restart == restart_type::temporary) remove(r);
    complete(std::move(*shared_h), ex_, boost::system::error_code{});
  });
}

void supervisor_impl::api_restart_child(std::string id, handler_t<child_start_result> h) {
  if (ended_ || stopping_)
    return complete(std::move(h), ex_, err(supervisor_errc::supervisor_down), child_start_result{});
  auto shared_h = std::make_shared<handler_t<child_start_result>>(std::move(h));
  enqueue([this, id = std::move(id), shared_h]() -> asio::awaitable<void> {
    child_record* r = stopping_ ? nullptr : find(id);
    boost::system::error_code ec;
    child_start_result out;
    if (stopping_) {
      ec = err(supervisor_errc::supervisor_down);
    } else if (!r) {
      ec = err(supervisor_errc::not_found);
    } else if (r->status == child_status::running) {
      ec = err(supervisor_errc::running);
    } else if (r->status == child_status::restarting) {
      ec = err(supervisor_errc::restarting);
    } else {
      event_reason why;
      switch (start_incarnation(*r, why, &out.info)) {
        case start_outcome::started: out.device = r->dev; break;
        case start_outcome::ignored: out.ignored = true; break;  // stays stopped: may try again
        case start_outcome::failed:
          report(supervisor_event_kind::start_error, r->spec.id, device_id{}, r->incarnation, why,
                 supervisor_action::none, std::nullopt, "restart_child: spec kept");
          out.reason = std::move(why);
          ec = err(supervisor_errc::start_failed);  // OTP: the spec is kept
          break;
      }
    }
    complete(std::move(*shared_h), ex_, ec, std::move(out));
    co_return;
  });
}

void supervisor_impl::api_delete_child(std::string id, void_handler_t h) {
  if (ended_ || stopping_)
    return complete(std::move(h), ex_, err(supervisor_errc::supervisor_down));
  auto shared_h = std::make_shared<void_handler_t>(std::move(h));
  enqueue([this, id = std::move(id), shared_h]() -> asio::awaitable<void> {
    child_record* r = stopping_ ? nullptr : find(id);
    boost::system::error_code ec;
    if (stopping_) {
      ec = err(supervisor_errc::supervisor_down);
    } else if (!r) {
      ec = err(supervisor_errc::not_found);
    } else if (r->status == child_status::running) {
      ec = err(supervisor_errc::running);
    } else if (r->status == child_status::restarting) {
      ec = err(supervisor_errc::restarting);
    } else {
      remove(r);
    }
    complete(std::move(*shared_h), ex_, ec);
    co_return;
  });
}

void supervisor_impl::api_which_children(handler_t<std::vector<child_info>> h) {
  if (ended_) {
    return complete_direct(std::move(h), err(supervisor_errc::supervisor_down),
                           std::vector<child_info>{});
  }
  std::vector<child_info> out;
  out.reserve(children_.size());
  for (auto const& c : children_) {
    child_info i;
    i.id = c->spec.id;
    if (c->status == child_status::running) i.device = c->dev;
    i.kind = c->spec.kind;
    i.restart = c->spec.restart;
    i.status = c->status;
    i.incarnation = c->incarnation;
    out.push_back(std::move(i));
  }
  complete_direct(std::move(h), boost::system::error_code{}, std::move(out));
}

void supervisor_impl::api_count_children(handler_t<child_counts> h) {
  if (ended_)
    return complete_direct(std::move(h), err(supervisor_errc::supervisor_down), child_counts{});
  child_counts n;
  n.specs = children_.size();
  for (auto const& c : children_) {
    if (c->status == child_status::running) ++n.active;
    if (c->spec.kind == child_kind::supervisor) {
      ++n.supervisors;
    } else {
      ++n.workers;
    }
  }
  complete_direct(std::move(h), boost::system::error_code{}, n);
}

void supervisor_impl::api_budget(handler_t<restart_budget> h) {
  if (ended_) {
    return complete_direct(std::move(h), err(supervisor_errc::supervisor_down), restart_budget{});
  }
  auto const now = clock_->now();
  restart_budget b;
  b.restarts_in_window = window_.in_window(now);
  b.max_restarts = window_.max_restarts();
  b.period = window_.period();
  b.until_oldest_expires = window_.until_oldest_expires(now);
  complete_direct(std::move(h), boost::system::error_code{}, b);
}

void supervisor_impl::api_stop(bool request, handler_t<supervisor_exit> h) {
  if (ended_) return complete(std::move(h), ex_, boost::system::error_code{}, exit_);
  exit_waiters_.push_back(std::move(h));
  if (request && !stopping_) {
    stopping_ = true;
    wake();
  }
}

}  // namespace backplane::detail
