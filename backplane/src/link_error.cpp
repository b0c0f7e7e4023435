#include <backplane/link_error.hpp>

#include <string>

namespace backplane {

namespace {
class link_category_impl final : public boost::system::error_category {
 public:
  [[nodiscard]] char const* name() const noexcept override { return "backplane.link"; }
  [[nodiscard]] std::string message(int ev) const override {
    switch (static_cast<link_error>(ev)) {
      case link_error::device_down:
        return "the device asking for the link has already disconnected";
      case link_error::link_down: return "the device to link to has already disconnected";
    }
    return "unknown backplane link error";
  }
};
}  // namespace

boost::system::error_category const& link_category() noexcept {
  static link_category_impl const instance;
  return instance;
}

}  // namespace backplane
