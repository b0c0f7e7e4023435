#pragma once
// endpoints: the bodies of /readyz, /tree and /metrics, from one snapshot of the tree.

#include "tree_state.hpp"

#include <backplane/supervisor/supervisor.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace backplane::detail {

/// What the HTTP endpoints know at one moment: the root's answers to its runtime API (empty
/// when it did not answer in time) and the counters the events left behind, which cover the
/// nested supervisors too.
struct tree_snapshot {
  std::string root_path{};
  std::optional<std::vector<child_info>> children{};  ///< the root's which_children
  std::optional<restart_budget> budget{};             ///< the root's restart budget
  std::map<std::pair<std::string, std::string>, tree_state::child_counters> counters{};
  std::map<std::string, std::uint64_t> intensity_exceeded{};
};

struct readiness {
  bool ready = false;
  std::vector<std::string> reasons{};  ///< why not, one line each
};

/// Ready when the root answered, every permanent child of the root is running, and no child of
/// any supervisor in the tree waits for a restart.
[[nodiscard]] readiness check_ready(tree_snapshot const& s);

/// The tree as JSON (Boost.JSON): {"path", "answered", "budget": {...}, "children": [{"id",
/// "path", "kind", "restart", "status", "incarnation", "device", "restarts", "crashes",
/// "restart_pending", "last_reason", "children": [...]}]}; a nested supervisor's children are
/// those its events named.
[[nodiscard]] std::string tree_json(tree_snapshot const& s);

/// Prometheus text exposition format, version 0.0.4.
[[nodiscard]] std::string metrics_text(tree_snapshot const& s);

/// The live page served at `/`: one HTML document, no external assets, with `initial_json`
/// (page_state_json) inline so that it shows the tree as soon as it loads;
/// then it follows /events and /tree.
[[nodiscard]] std::string live_page(std::string_view initial_json);

/// `{"tree": tree_json(s), "reports": [each kept report's JSON], "seq": the last report's}`.
[[nodiscard]] std::string page_state_json(tree_snapshot const& s,
                                          std::vector<tree_state::report> const& reports);

}  // namespace backplane::detail
