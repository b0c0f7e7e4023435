// endpoints: /readyz, /tree and /metrics bodies.

#include "endpoints.hpp"

#include <backplane/format.hpp>

#include <fmt/format.h>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <set>

namespace backplane::detail {

namespace {

namespace json = boost::json;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

char const* status_name(child_status s) {
  switch (s) {
    case child_status::running: return "running";
    case child_status::restarting: return "restarting";
    case child_status::stopped: return "stopped";
  }
  return "unknown";
}

char const* restart_name(restart_type r) {
  switch (r) {
    case restart_type::permanent: return "permanent";
    case restart_type::transient: return "transient";
    case restart_type::temporary: return "temporary";
  }
  return "unknown";
}

using counters_map = std::map<std::pair<std::string, std::string>, tree_state::child_counters>;

tree_state::child_counters const* find(counters_map const& m, std::string const& sup,
                                       std::string const& id) {
  auto it = m.find({sup, id});
  return it == m.end() ? nullptr : &it->second;
}

void add_counters(json::object& o, tree_state::child_counters const* c) {
  o["restarts"] = c ? c->restarts : 0;
  o["crashes"] = c ? c->crashes : 0;
  o["restart_pending"] = c ? c->restart_pending : false;
  o["last_reason"] = c ? c->last_reason : std::string();
}

/// The children of the nested supervisor at `path` as its events named them: the children it
/// reported about, and the supervisors below it that reported about theirs.
json::array nested_children(counters_map const& m, std::string const& path) {
  std::set<std::string> ids;
  auto const prefix = path + "/";
  for (auto const& [key, c] : m) {
    if (key.first == path) {
      ids.insert(key.second);
    } else if (key.first.compare(0, prefix.size(), prefix) == 0) {
      auto rest = key.first.substr(prefix.size());
      ids.insert(rest.substr(0, rest.find('/')));
    }
  }
  json::array out;
  for (auto const& id : ids) {
    json::object o;
    auto const child_path = prefix + id;
    auto const* c = find(m, path, id);
    o["id"] = id;
    o["path"] = child_path;
    o["status"] = c ? c->status : std::string("running");
    o["incarnation"] = c ? c->incarnation : 0;
    add_counters(o, c);
    auto below = nested_children(m, child_path);
    o["kind"] = below.empty() ? "worker" : "supervisor";
    o["children"] = std::move(below);
    out.push_back(std::move(o));
  }
  return out;
}

/// A Prometheus label value: backslash, double quote and line feed escaped.
std::string label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

readiness check_ready(tree_snapshot const& s) {
  readiness r;
  if (!s.children) {
    r.reasons.push_back(fmt::format("{}: the root supervisor did not answer", s.root_path));
  } else {
    for (auto const& k : *s.children) {
      if (k.restart == restart_type::permanent && k.status != child_status::running) {
        r.reasons.push_back(
            fmt::format("{}: permanent child {} is {}", s.root_path, k.id, status_name(k.status)));
      }
    }
  }
  for (auto const& [key, c] : s.counters) {
    // The root's own children were checked above, from the root's answer.
    if (c.restart_pending && (key.first != s.root_path || !s.children)) {
      r.reasons.push_back(fmt::format("{}: child {} waits for a restart ({})", key.first,
                                      key.second, c.last_reason));
    }
  }
  r.ready = r.reasons.empty();
  return r;
}

std::string tree_json(tree_snapshot const& s) {
  json::object root;
  root["path"] = s.root_path;
  root["answered"] = s.children.has_value();
  if (s.budget) {
    json::object b;
    b["restarts_in_window"] = s.budget->restarts_in_window;
    b["max_restarts"] = s.budget->max_restarts;
    b["period_ms"] = duration_cast<milliseconds>(s.budget->period).count();
    b["until_oldest_expires_ms"] =
        duration_cast<milliseconds>(s.budget->until_oldest_expires).count();
    root["budget"] = std::move(b);
  }
  json::object intensity;
  for (auto const& [path, n] : s.intensity_exceeded) intensity[path] = n;
  root["intensity_exceeded"] = std::move(intensity);
  json::array children;
  if (s.children) {
    for (auto const& k : *s.children) {
      json::object o;
      auto const path = s.root_path + "/" + k.id;
      o["id"] = k.id;
      o["path"] = path;
      o["kind"] = k.kind == child_kind::supervisor ? "supervisor" : "worker";
      o["restart"] = restart_name(k.restart);
      o["status"] = status_name(k.status);
      o["incarnation"] = k.incarnation;
      if (k.device) {
        o["device"] = fmt::format("{}", *k.device);
      } else {
        o["device"] = nullptr;
      }
      add_counters(o, find(s.counters, s.root_path, k.id));
      o["children"] =
          k.kind == child_kind::supervisor ? nested_children(s.counters, path) : json::array();
      children.push_back(std::move(o));
    }
  }
  root["children"] = std::move(children);
  return json::serialize(root);
}

std::string page_state_json(tree_snapshot const& s,
                            std::vector<tree_state::report> const& reports) {
  // Both parts are JSON documents already: spliced rather than parsed again.
  std::string out = fmt::format("{{\"tree\":{},\"reports\":[", tree_json(s));
  for (std::size_t i = 0; i < reports.size(); ++i) {
    if (i != 0) out += ',';
    out += reports[i].json;
  }
  out += "],\"seq\":" + std::to_string(reports.empty() ? 0 : reports.back().seq) + "}";
  return out;
}

std::string metrics_text(tree_snapshot const& s) {
  std::string out;
  out +=
      fmt::format("# HELP backplane_up 1 when the root supervisor answered within the deadline.\n");
  out += fmt::format("# TYPE backplane_up gauge\n");
  out +=
      fmt::format("backplane_up{{supervisor=\"{}\"}} {}\n", label(s.root_path), s.children ? 1 : 0);

  out += fmt::format(
      "# HELP backplane_child_restarts_total Restarts of a child, by supervisor and child id.\n");
  out += fmt::format("# TYPE backplane_child_restarts_total counter\n");
  for (auto const& [key, c] : s.counters) {
    out += fmt::format("backplane_child_restarts_total{{supervisor=\"{}\",child=\"{}\"}} {}\n",
                       label(key.first), label(key.second), c.restarts);
  }
  out += fmt::format(
      "# HELP backplane_child_crashes_total Exits with a fault (or failed starts) of a child.\n");
  out += fmt::format("# TYPE backplane_child_crashes_total counter\n");
  for (auto const& [key, c] : s.counters) {
    out += fmt::format("backplane_child_crashes_total{{supervisor=\"{}\",child=\"{}\"}} {}\n",
                       label(key.first), label(key.second), c.crashes);
  }
  out += fmt::format("# HELP backplane_children Children of the root supervisor by status.\n");
  out += fmt::format("# TYPE backplane_children gauge\n");
  if (s.children) {
    std::map<std::string, std::size_t> by_status{{"running", 0}, {"restarting", 0}, {"stopped", 0}};
    for (auto const& k : *s.children) ++by_status[status_name(k.status)];
    for (auto const& [status, n] : by_status) {
      out += fmt::format("backplane_children{{supervisor=\"{}\",status=\"{}\"}} {}\n",
                         label(s.root_path), status, n);
    }
  }
  out += fmt::format(
      "# HELP backplane_intensity_exceeded_total Times a supervisor gave up (too many "
      "restarts in its period).\n");
  out += fmt::format("# TYPE backplane_intensity_exceeded_total counter\n");
  out += fmt::format(
      "backplane_intensity_exceeded_total{{supervisor=\"{}\"}} {}\n", label(s.root_path),
      s.intensity_exceeded.count(s.root_path) ? s.intensity_exceeded.at(s.root_path) : 0);
  for (auto const& [path, n] : s.intensity_exceeded) {
    if (path == s.root_path) continue;
    out +=
        fmt::format("backplane_intensity_exceeded_total{{supervisor=\"{}\"}} {}\n", label(path), n);
  }
  if (s.budget) {
    out += fmt::format(
        "# HELP backplane_restarts_in_window Restarts counted against the root's intensity.\n");
    out += fmt::format("# TYPE backplane_restarts_in_window gauge\n");
    out += fmt::format("backplane_restarts_in_window{{supervisor=\"{}\"}} {}\n", label(s.root_path),
                       s.budget->restarts_in_window);
    out += fmt::format("# HELP backplane_max_restarts The root's intensity limit.\n");
    out += fmt::format("# TYPE backplane_max_restarts gauge\n");
    out += fmt::format("backplane_max_restarts{{supervisor=\"{}\"}} {}\n", label(s.root_path),
                       s.budget->max_restarts);
  }
  return out;
}

}  // namespace backplane::detail
