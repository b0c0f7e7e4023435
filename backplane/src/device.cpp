#include <backplane/device.hpp>

#include <stdexcept>

namespace backplane {

namespace {
[[noreturn]] void empty_device() {
  throw std::logic_error(
      "backplane::device: this device is empty (moved from, or already disconnected); "
      "use the device it was moved to, or create a new one");
}
}  // namespace

device::device() : state_(detail::create_state()) {}

device& device::operator=(device&& o) noexcept {
  if (this != &o) {
    if (state_) detail::disconnect_and_release(state_.detach(), fault::drop());
    state_ = std::move(o.state_);
  }
  return *this;
}

device::~device() {
  if (state_) detail::disconnect_and_release(state_.detach(), fault::drop());
}

detail::state_header* device::checked() const {
  if (!state_) empty_device();
  return state_.get();
}

device_id device::id() const { return checked()->id; }

line device::line() const {
  (void)checked();
  return backplane::line(state_);
}

void device::link(device& other, link_mode mode) { detail::link(checked(), other.checked(), mode); }

void device::unlink(device& other, link_mode mode) {
  detail::unlink(checked(), other.checked(), mode);
}

boost::system::error_code device::link_line(backplane::line const& other, link_mode mode) {
  return detail::link_lines(checked(), other.checked(), mode, true);
}

boost::system::error_code device::link_line(backplane::line&& other, link_mode mode) {
  detail::state_header* self = checked();
  (void)other.checked();
  return detail::link_line_adopting(self, std::move(other.state_), mode);
}

void device::unlink_line(backplane::line const& other, link_mode mode) {
  detail::unlink(checked(), other.checked(), mode);
}

std::optional<link_mode> device::link_to(device_id other) const {
  return detail::link_to(checked(), other);
}

std::size_t device::link_count() const { return detail::link_count(checked()); }

std::optional<message> device::try_receive() { return detail::try_receive(checked()); }

void device::disconnect(std::optional<fault> f) {
  (void)checked();
  detail::disconnect_and_release(state_.detach(), f);
}

void device::disconnect(fault f, std::exception_ptr cause) {
  (void)checked();
  detail::disconnect_and_release(state_.detach(), f, cause);
}

}  // namespace backplane
