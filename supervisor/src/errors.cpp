#include <backplane/supervisor/errors.hpp>

namespace backplane {

namespace {
class supervisor_category_impl final : public boost::system::error_category {
 public:
  [[nodiscard]] char const* name() const noexcept override { return "backplane.supervisor"; }
  [[nodiscard]] std::string message(int ev) const override {
    switch (static_cast<supervisor_errc>(ev)) {
      case supervisor_errc::already_present:
        return "a child with this id exists and is stopped; restart_child or delete_child it";
      case supervisor_errc::running: return "the child is running; terminate_child it first";
      case supervisor_errc::restarting:
        return "the child is waiting to be restarted; terminate_child it first";
      case supervisor_errc::not_found: return "no child with this id";
      case supervisor_errc::start_failed:
        return "the child's start function failed; the start_error report has the reason";
      case supervisor_errc::supervisor_down: return "the supervisor has stopped or is stopping";
    }
    return "unknown supervisor error";
  }
};
}  // namespace

boost::system::error_category const& supervisor_category() noexcept {
  static supervisor_category_impl const instance;
  return instance;
}

}  // namespace backplane
