#pragma once
// endpoints: the bodies of /readyz, /tree and /metrics, from one snapshot of the tree.

#include "tree_state.hpp"

#include <backplane/supervisor/supervisor.hpp>
#include <backplane/supervisor/worker_pool.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace backplane::detail {

/// What the HTTP endpoints know at one moment: the root's tree view (empty when it did not answer
/// in time), each supervisor answering for its own children on its own executor, and the
/// counters the events left behind (restarts, crashes, last reasons), which the view does not
/// hold.
struct tree_snapshot {
  std::string root_path{};
  std::optional<tree_node> tree{};  ///< the root's async_tree_view
  std::map<std::pair<std::string, std::string>, tree_state::child_counters> counters{};
  std::map<std::string, std::uint64_t> intensity_exceeded{};
  /// The registered worker pools' stats, by path (http_options::pools).
  std::vector<std::pair<std::string, pool_stats>> pools{};
};

struct readiness {
  bool ready = false;
  std::vector<std::string> reasons{};  ///< why not, one line each
};

/// Ready when the root answered and, in every supervisor of the tree view, every permanent child
/// is running and no child waits for a restart.
[[nodiscard]] readiness check_ready(tree_snapshot const& s);

/// The tree as JSON (Boost.JSON): {"path", "answered", "budget": {...}, "intensity_exceeded":
/// {path: n}, "children": [node]}, each node {"id", "path", "kind", "restart", "status",
/// "incarnation", "device", "restarts", "crashes", "restart_pending", "last_reason",
/// "inspected", "budget" (a nested supervisor that answered), "children": [node]}, from the
/// tree view level by level.
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
