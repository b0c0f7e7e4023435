#pragma once
// line: a cheap, copyable, thread-safe reference to a device.

#include <backplane/detail/config_check.hpp>
#include <backplane/detail/state.hpp>
#include <backplane/device_id.hpp>
#include <backplane/link_error.hpp>
#include <backplane/link_mode.hpp>
#include <backplane/message.hpp>

#include <boost/system/error_code.hpp>

namespace backplane {

class device;

/// A non-owning handle to a device: send it messages, link it to other
/// devices, ask whether it is still connected. A line never keeps a device
/// connected; once the device disconnects every operation through the line
/// fails softly (`send` returns false, linking reports `link_error`).
///
/// Thread-safety: every member may be called from any thread, concurrently.
/// Copying a line costs one atomic increment. Destroying the last line of a
/// device that has disconnected frees the device's shared state.
class line {
 public:
  /// An empty line, as left by a move. Only assignment, destruction and
  /// `valid()` may be used on it; anything else throws std::logic_error.
  line() noexcept = default;

  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(state_); }

  /// The id of the device this line leads to.
  [[nodiscard]] device_id id() const;

  /// True while the device has not disconnected. A snapshot: it may change
  /// the moment it is returned.
  [[nodiscard]] bool connected() const;

  /// Puts `m` in the device's mailbox and wakes it if it waits. Returns false,
  /// and drops `m`, if the device has disconnected.
  bool send(message m) const;

  /// Asks the device to shut down (`shutdown{requester}`). Same result as send.
  bool request_shutdown(device_id requester) const { return send(shutdown{requester}); }

  /// Links the device behind this line to the device behind `other`; `mode`
  /// is seen from this line's device. Fails with `link_error::device_down` if
  /// this line's device has disconnected, `link_error::link_down` if the
  /// other has. Throws std::invalid_argument if both lines lead to the same
  /// device. Atomic with respect to disconnects: a link that succeeds will be
  /// honoured, and a disconnect is never lost.
  [[nodiscard]] boost::system::error_code link_line(line const& other, link_mode mode) const;

  /// Removes `mode` from the link (the rest of the link stays). Unlinking
  /// what is not linked, or a device that is gone, does nothing.
  void unlink_line(line const& other, link_mode mode) const;

  friend bool operator==(line const& a, line const& b) noexcept {
    return a.state_.get() == b.state_.get();
  }

 private:
  friend class device;
  explicit line(detail::state_ref s) noexcept : state_(std::move(s)) {}
  [[nodiscard]] detail::state_header* checked() const;

  detail::state_ref state_;
};

}  // namespace backplane
