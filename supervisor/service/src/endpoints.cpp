// endpoints: /readyz, /tree and /metrics bodies.

#include "endpoints.hpp"

#include <backplane/format.hpp>

#include <fmt/format.h>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <vector>

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

json::object budget_json(restart_budget const& b) {
  json::object o;
  o["restarts_in_window"] = b.restarts_in_window;
  o["max_restarts"] = b.max_restarts;
  o["period_ms"] = duration_cast<milliseconds>(b.period).count();
  o["until_oldest_expires_ms"] = duration_cast<milliseconds>(b.until_oldest_expires).count();
  return o;
}

/// One child of `parent` (a supervisor's path) and, for a nested supervisor that answered, its
/// own children.
json::object node_json(tree_node const& n, std::string const& parent, counters_map const& m) {
  json::object o;
  auto const& k = n.info;
  o["id"] = k.id;
  o["path"] = n.path;
  o["kind"] = k.kind == child_kind::supervisor ? "supervisor" : "worker";
  o["restart"] = restart_name(k.restart);
  o["status"] = status_name(k.status);
  o["incarnation"] = k.incarnation;
  if (k.device) {
    o["device"] = fmt::format("{}", *k.device);
  } else {
    o["device"] = nullptr;
  }
  auto const* c = find(m, parent, k.id);
  o["restarts"] = c ? c->restarts : 0;
  o["crashes"] = c ? c->crashes : 0;
  o["restart_pending"] = k.status == child_status::restarting;
  o["last_reason"] = c ? c->last_reason : std::string();
  o["inspected"] = n.inspected;
  if (n.budget) o["budget"] = budget_json(*n.budget);
  json::array children;
  for (auto const& child : n.children) children.push_back(node_json(child, n.path, m));
  o["children"] = std::move(children);
  return o;
}

/// The supervisors of the view that answered, parents before their children.
void supervisors(tree_node const& n, std::vector<tree_node const*>& out) {
  if (!n.inspected) return;
  out.push_back(&n);
  for (auto const& c : n.children) supervisors(c, out);
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

/// One pool metric: its HELP and TYPE lines, then a sample per pool.
template <class Get>
void pool_metric(std::string& out, std::vector<std::pair<std::string, pool_stats>> const& pools,
                 std::string_view name, std::string_view type, std::string_view help, Get get) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  for (auto const& [path, st] : pools) {
    out += fmt::format("{}{{pool=\"{}\"}} {}\n", name, label(path), get(st));
  }
}

void pool_metrics(std::string& out, std::vector<std::pair<std::string, pool_stats>> const& p) {
  if (p.empty()) return;
  using s = pool_stats const&;
  pool_metric(out, p, "backplane_pool_jobs_queued", "gauge",
              "Jobs waiting for a worker (submitters waiting for room included).",
              [](s x) { return x.queued; });
  pool_metric(out, p, "backplane_pool_jobs_running", "gauge",
              "Jobs handed to a worker and not answered yet.", [](s x) { return x.running; });
  pool_metric(out, p, "backplane_pool_jobs_submitted_total", "counter",
              "Jobs accepted by async_submit or try_submit.", [](s x) { return x.submitted; });
  pool_metric(out, p, "backplane_pool_jobs_completed_total", "counter",
              "Jobs answered with their value.", [](s x) { return x.completed; });
  pool_metric(out, p, "backplane_pool_jobs_failed_total", "counter",
              "Jobs answered with the error they returned.", [](s x) { return x.failed; });
  pool_metric(out, p, "backplane_pool_jobs_crashed_total", "counter",
              "Jobs answered with job_crashed (they threw, or their worker died).",
              [](s x) { return x.crashed; });
  pool_metric(out, p, "backplane_pool_jobs_cancelled_total", "counter",
              "Jobs answered with operation_aborted or pool_failed.",
              [](s x) { return x.cancelled; });
  pool_metric(out, p, "backplane_pool_jobs_rejected_total", "counter",
              "Submissions refused at once (queue full, pool stopping).",
              [](s x) { return x.rejected; });
  pool_metric(out, p, "backplane_pool_jobs_retried_total", "counter",
              "Crashed attempts of idempotent jobs run again.", [](s x) { return x.retried; });
  pool_metric(out, p, "backplane_pool_workers_alive", "gauge", "Workers running.",
              [](s x) { return x.workers_alive; });
  pool_metric(out, p, "backplane_pool_worker_restarts_total", "counter", "Worker restarts.",
              [](s x) { return x.restarts; });
  pool_metric(out, p, "backplane_pool_queue_high_water", "gauge", "Most jobs ever queued at once.",
              [](s x) { return x.queue_high_water; });
}

}  // namespace

readiness check_ready(tree_snapshot const& s) {
  readiness r;
  if (!s.tree) {
    r.reasons.push_back(fmt::format("{}: the root supervisor did not answer", s.root_path));
    r.ready = false;
    return r;
  }
  std::vector<tree_node const*> sups;
  supervisors(*s.tree, sups);
  for (auto const* sup : sups) {
    for (auto const& child : sup->children) {
      auto const& k = child.info;
      auto const* c = find(s.counters, sup->path, k.id);
      auto const why = c && !c->last_reason.empty() ? fmt::format(" ({})", c->last_reason) : "";
      if (k.status == child_status::restarting) {
        r.reasons.push_back(
            fmt::format("{}: child {} waits for a restart{}", sup->path, k.id, why));
      } else if (k.restart == restart_type::permanent && k.status != child_status::running) {
        r.reasons.push_back(fmt::format("{}: permanent child {} is {}{}", sup->path, k.id,
                                        status_name(k.status), why));
      }
    }
  }
  r.ready = r.reasons.empty();
  return r;
}

std::string tree_json(tree_snapshot const& s) {
  json::object root;
  root["path"] = s.root_path;
  root["answered"] = s.tree.has_value();
  if (s.tree && s.tree->budget) root["budget"] = budget_json(*s.tree->budget);
  json::object intensity;
  for (auto const& [path, n] : s.intensity_exceeded) intensity[path] = n;
  root["intensity_exceeded"] = std::move(intensity);
  json::array children;
  if (s.tree) {
    for (auto const& c : s.tree->children)
      children.push_back(node_json(c, s.root_path, s.counters));
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
  out += fmt::format("backplane_up{{supervisor=\"{}\"}} {}\n", label(s.root_path), s.tree ? 1 : 0);

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
  std::vector<tree_node const*> sups;
  if (s.tree) supervisors(*s.tree, sups);
  out += fmt::format(
      "# HELP backplane_children Children of each supervisor that answered, by status.\n");
  out += fmt::format("# TYPE backplane_children gauge\n");
  for (auto const* sup : sups) {
    std::map<std::string, std::size_t> by_status{{"running", 0}, {"restarting", 0}, {"stopped", 0}};
    for (auto const& c : sup->children) ++by_status[status_name(c.info.status)];
    for (auto const& [status, n] : by_status) {
      out += fmt::format("backplane_children{{supervisor=\"{}\",status=\"{}\"}} {}\n",
                         label(sup->path), status, n);
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
  out += fmt::format(
      "# HELP backplane_restarts_in_window Restarts counted against each supervisor's "
      "intensity.\n");
  out += fmt::format("# TYPE backplane_restarts_in_window gauge\n");
  for (auto const* sup : sups) {
    out += fmt::format("backplane_restarts_in_window{{supervisor=\"{}\"}} {}\n", label(sup->path),
                       sup->budget ? sup->budget->restarts_in_window : 0);
  }
  out += fmt::format("# HELP backplane_max_restarts Each supervisor's intensity limit.\n");
  out += fmt::format("# TYPE backplane_max_restarts gauge\n");
  for (auto const* sup : sups) {
    out += fmt::format("backplane_max_restarts{{supervisor=\"{}\"}} {}\n", label(sup->path),
                       sup->budget ? sup->budget->max_restarts : 0);
  }
  pool_metrics(out, s.pools);
  return out;
}

}  // namespace backplane::detail
