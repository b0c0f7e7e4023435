#pragma once
// pool_registry: the worker pools whose stats the service's /metrics exposes.

#include <backplane/supervisor/worker_pool.hpp>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace backplane {

/// The worker pools `/metrics` reports on, by path (`worker_pool::path()`, "app/db/pool"): set
/// `http_options::pools` and register each pool where its handle is made, from
/// `worker_pool::as_child`'s `on_start` (`pool_registry::on_start(registry)` is such a callback) or
/// after `worker_pool::start`. A pool's restart registers its new handle, which replaces the old
/// one of the same path (its counters then start again from 0, which Prometheus reads as a counter
/// reset). A pool that has ended keeps its last stats until another takes its path.
///
/// Thread-safety: every member may be called from any thread. The registry's own mutex guards
/// only its map; the stats come from each pool's `stats()`, its own consistent snapshot, and
/// no supervisor is locked or waited for.
class pool_registry {
 public:
  /// Registers `pool` under its path, replacing a pool registered there before.
  void add(worker_pool pool);

  /// A callback for `worker_pool::as_child`'s `on_start` that registers each new handle in
  /// `registry` (which it keeps alive), then calls `then` with it, if set.
  [[nodiscard]] static std::function<void(worker_pool)> on_start(
      std::shared_ptr<pool_registry> registry, std::function<void(worker_pool)> then = {});

  /// Every registered pool's path and stats, by path.
  [[nodiscard]] std::vector<std::pair<std::string, pool_stats>> snapshot() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, worker_pool> pools_;
};

}  // namespace backplane
