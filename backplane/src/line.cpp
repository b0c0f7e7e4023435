#include <backplane/line.hpp>

#include <stdexcept>

namespace backplane {

detail::state_header* line::checked() const {
  if (!state_)
    throw std::logic_error(
        "backplane::line: this line is empty (default-constructed or moved from); get one "
        "from device::line()");
  return state_.get();
}

device_id line::id() const { return checked()->id; }

bool line::connected() const { return detail::connected(checked()); }

bool line::send(message m) const { return detail::send(checked(), std::move(m)); }

boost::system::error_code line::link_line(line const& other, link_mode mode) const {
  return detail::link_lines(checked(), other.checked(), mode, false);
}

void line::unlink_line(line const& other, link_mode mode) const {
  detail::unlink(checked(), other.checked(), mode);
}

}  // namespace backplane
