// pool_errc's category and job_crashed.

#include <backplane/supervisor/pool_errors.hpp>

#include <fmt/format.h>

namespace backplane {

namespace {
class pool_category_impl final : public boost::system::error_category {
 public:
  [[nodiscard]] char const* name() const noexcept override { return "backplane.pool"; }
  [[nodiscard]] std::string message(int ev) const override {
    switch (static_cast<pool_errc>(ev)) {
      case pool_errc::max_children:
        return "the dynamic supervisor has max_children children; terminate one or raise "
               "max_children";
      case pool_errc::queue_full:
        return "the pool's queue is full; use async_submit to wait for room, or raise "
               "queue_capacity";
      case pool_errc::stopping:
        return "the pool is stopping or stopped and accepts no jobs; submit before async_stop, "
               "or start a new pool";
      case pool_errc::pool_failed:
        return "the pool gave up: its workers crashed more than max_restarts times in period";
      case pool_errc::job_crashed:
        return "the job crashed (threw, or its worker died under it); the completion's "
               "backplane::job_crashed says how";
    }
    return "unknown pool error";
  }
};
}  // namespace

boost::system::error_category const& pool_category() noexcept {
  static pool_category_impl const c;
  return c;
}

namespace {
std::string crash_text(std::uint64_t sequence, std::optional<std::string> const& key,
                       std::string const& reason) {
  if (key) return fmt::format("job #{} (key {}) crashed: {}", sequence, *key, reason);
  return fmt::format("job #{} crashed: {}", sequence, reason);
}
}  // namespace

job_crashed::job_crashed(std::uint64_t sequence, std::optional<std::string> key,
                         std::exception_ptr cause, std::string const& reason)
    : std::runtime_error(crash_text(sequence, key, reason)),
      sequence_(sequence),
      key_(std::move(key)),
      cause_(std::move(cause)) {}

}  // namespace backplane
