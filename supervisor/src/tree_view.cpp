// The tree view: one child's row and spec, a nested supervisor found by path, and the whole tree
// below a supervisor, each supervisor answering for its own children on its own executor.

#include "nested_hook.hpp"
#include "supervisor_impl.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>

namespace asio = boost::asio;

namespace backplane {

// The public handle's forwarders: each call hops onto the supervisor's executor, as in
// supervisor.cpp.

void supervisor::which_child(impl_ptr const& impl, std::string id, handler_t<child_info> h) {
  asio::post(impl->executor(), [impl, id = std::move(id), h = std::move(h)]() mutable {
    impl->api_which_child(id, std::move(h));
  });
}

void supervisor::get_childspec(impl_ptr const& impl, std::string id, handler_t<child_spec> h) {
  asio::post(impl->executor(), [impl, id = std::move(id), h = std::move(h)]() mutable {
    impl->api_get_childspec(id, std::move(h));
  });
}

void supervisor::find_supervisor(impl_ptr const& impl, std::string path,
                                 handler_t<std::optional<supervisor>> h) {
  asio::post(impl->executor(), [impl, path = std::move(path), h = std::move(h)]() mutable {
    impl->api_find_supervisor(std::move(path), std::move(h));
  });
}

void supervisor::tree_view(impl_ptr const& impl, handler_t<tree_node> h) {
  asio::post(impl->executor(),
             [impl, h = std::move(h)]() mutable { impl->api_tree_view(std::move(h)); });
}

namespace detail {

void nested_hook::operator()() const { impl->kill_all(); }

namespace {

boost::system::error_code err(supervisor_errc e) { return make_error_code(e); }

child_info row_of(child_record const& c) {
  child_info i;
  i.id = c.spec.id;
  if (c.status == child_status::running) i.device = c.dev;
  i.kind = c.spec.kind;
  i.restart = c.spec.restart;
  i.status = c.status;
  i.incarnation = c.incarnation;
  return i;
}

/// The nested supervisor a running child is, if it is one this view can reach (a dynamic
/// supervisor or a worker pool is not).
std::shared_ptr<supervisor_impl> nested_of(child_record const& c) {
  if (c.status != child_status::running || c.spec.kind != child_kind::supervisor || !c.run)
    return nullptr;
  auto const* hook = c.run->on_kill.target<nested_hook>();
  return hook ? hook->impl : nullptr;
}

}  // namespace

// Each api_ function runs in the handler the public API posted to ex_, outside any job of the
// supervisor's loop: the handler (a supervisor::reply, which dispatches itself to its own
// executor) may be called at once.

void supervisor_impl::api_which_child(std::string const& id, handler_t<child_info> h) {
  if (ended_) return std::move(h)(err(supervisor_errc::supervisor_down), child_info{});
  child_record const* r = find(id);
  if (!r) return std::move(h)(err(supervisor_errc::not_found), child_info{});
  std::move(h)(boost::system::error_code{}, row_of(*r));
}

void supervisor_impl::api_get_childspec(std::string const& id, handler_t<child_spec> h) {
  if (ended_) return std::move(h)(err(supervisor_errc::supervisor_down), child_spec{});
  child_record const* r = find(id);
  if (!r) return std::move(h)(err(supervisor_errc::not_found), child_spec{});
  // The record's spec has no start function: it lives in the identity (released for a
  // temporary child once started).
  child_spec copy = r->spec;
  copy.start = r->identity->start;
  std::move(h)(boost::system::error_code{}, std::move(copy));
}

void supervisor_impl::api_find_supervisor(std::string path,
                                          handler_t<std::optional<supervisor>> h) {
  if (ended_ || stopping_) return std::move(h)(err(supervisor_errc::supervisor_down), std::nullopt);
  if (path == path_) {
    return std::move(h)(boost::system::error_code{}, supervisor_access::make(shared_from_this()));
  }
  auto const prefix = path_ + "/";
  if (path.size() <= prefix.size() || path.compare(0, prefix.size(), prefix) != 0)
    return std::move(h)(err(supervisor_errc::not_found), std::nullopt);
  auto const rest = std::string_view(path).substr(prefix.size());
  child_record const* r = find(std::string(rest.substr(0, rest.find('/'))));
  if (!r || r->spec.kind != child_kind::supervisor)
    return std::move(h)(err(supervisor_errc::not_found), std::nullopt);
  if (r->status != child_status::running)
    return std::move(h)(err(supervisor_errc::supervisor_down), std::nullopt);
  auto nested = nested_of(*r);
  if (!nested) return std::move(h)(err(supervisor_errc::not_found), std::nullopt);
  // The nested supervisor answers the rest on its own executor; `h` replies wherever its caller
  // asked.
  asio::post(nested->executor(), [nested, path = std::move(path), h = std::move(h)]() mutable {
    nested->api_find_supervisor(std::move(path), std::move(h));
  });
}

void supervisor_impl::api_tree_view(handler_t<tree_node> h) {
  if (ended_) return std::move(h)(err(supervisor_errc::supervisor_down), tree_node{});
  // Touched only on ex_: here, and in the nested answers, which are bound to ex_.
  struct gather {
    // Moved in at construction: Asio 1.81's any_completion_handler move assignment recurses
    // without end (it constructs from the source as an lvalue).
    explicit gather(handler_t<tree_node> h) : reply(std::move(h)) {}
    tree_node node;
    std::size_t pending = 0;
    handler_t<tree_node> reply;
  };
  auto g = std::make_shared<gather>(std::move(h));
  tree_node& self = g->node;
  self.path = path_;
  self.info.id = path_;
  self.info.kind = child_kind::supervisor;
  self.info.status = child_status::running;
  self.info.device = id_;
  auto const now = clock_->now();
  self.budget = restart_budget{window_.in_window(now), window_.max_restarts(), window_.period(),
                               window_.until_oldest_expires(now)};
  self.inspected = true;
  self.children.reserve(children_.size());
  std::vector<std::pair<std::size_t, std::shared_ptr<supervisor_impl>>> nested;
  for (auto const& c : children_) {
    tree_node n;
    n.path = path_ + "/" + c->spec.id;
    n.info = row_of(*c);
    if (auto impl = nested_of(*c)) nested.emplace_back(self.children.size(), std::move(impl));
    self.children.push_back(std::move(n));
  }
  if (nested.empty()) return std::move(g->reply)(boost::system::error_code{}, std::move(self));
  g->pending = nested.size();
  for (auto& entry : nested) {
    auto const at = entry.first;
    // Through the nested supervisor's public API: it answers on its own executor, and the
    // answer comes back to ours.
    supervisor_access::make(std::move(entry.second))
        .async_tree_view(
            asio::bind_executor(ex_, [g, at](boost::system::error_code ec, tree_node sub) {
              tree_node& slot = g->node.children[at];
              if (!ec) {
                // The parent's row says more about the child than the child about itself.
                sub.info = std::move(slot.info);
                slot = std::move(sub);
              }
              if (--g->pending == 0)
                std::move(g->reply)(boost::system::error_code{}, std::move(g->node));
            }));
  }
}

}  // namespace detail
}  // namespace backplane
