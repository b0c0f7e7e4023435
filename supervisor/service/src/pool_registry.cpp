// pool_registry: pools by path, for /metrics.

#include <backplane/service/pool_registry.hpp>

namespace backplane {

void pool_registry::add(worker_pool pool) {
  std::string path = pool.path();
  std::lock_guard lock(mutex_);
  pools_.insert_or_assign(std::move(path), std::move(pool));
}

std::function<void(worker_pool)> pool_registry::on_start(std::shared_ptr<pool_registry> registry,
                                                         std::function<void(worker_pool)> then) {
  return [registry = std::move(registry), then = std::move(then)](worker_pool pool) {
    registry->add(pool);
    if (then) then(std::move(pool));
  };
}

std::vector<std::pair<std::string, pool_stats>> pool_registry::snapshot() const {
  // The handles are copied out first: a pool's stats() takes the pool's own lock, never under
  // ours.
  std::vector<std::pair<std::string, worker_pool>> pools;
  {
    std::lock_guard lock(mutex_);
    pools.assign(pools_.begin(), pools_.end());
  }
  std::vector<std::pair<std::string, pool_stats>> out;
  out.reserve(pools.size());
  for (auto const& [path, pool] : pools) out.emplace_back(path, pool.stats());
  return out;
}

}  // namespace backplane
