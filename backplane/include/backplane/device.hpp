#pragma once
// device: a coroutine's presence on the backplane.

#include <backplane/detail/config_check.hpp>
#include <backplane/detail/state.hpp>
#include <backplane/detail/wait_op.hpp>
#include <backplane/device_id.hpp>
#include <backplane/fault.hpp>
#include <backplane/line.hpp>
#include <backplane/link_mode.hpp>
#include <backplane/message.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>

#include <optional>

namespace backplane {

/// The owner of a presence on the backplane: it has a mailbox, links to other
/// devices, and disconnects exactly once, telling every device that monitors
/// it. Disconnecting happens through `disconnect(fault?)` or, if the device is
/// destroyed while still connected, with `fault::drop()`.
///
/// Move-only. A moved-from or disconnected device is empty: `valid()` is
/// false and every other member throws std::logic_error.
///
/// Thread-safety: a device belongs to one coroutine (or thread) at a time and
/// may move between threads; its members are not to be called concurrently.
/// Hand out `line()`s for concurrent use.
class device {
 public:
  /// A new, connected device with a fresh id and no links.
  device();
  device(device&& o) noexcept = default;
  /// Disconnects the device being overwritten with `fault::drop()`.
  device& operator=(device&& o) noexcept;
  device(device const&) = delete;
  device& operator=(device const&) = delete;
  /// Disconnects with `fault::drop()` if still connected.
  ~device();

  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(state_); }
  [[nodiscard]] device_id id() const;
  /// A line to this device, for sending and linking from elsewhere.
  [[nodiscard]] backplane::line line() const;

  /// Links this device to `other` (`mode` seen from this device). Cannot fail
  /// between two live devices. Throws std::invalid_argument if `other` is
  /// this device.
  void link(device& other, link_mode mode);
  /// Removes `mode` from the link; what is not linked is ignored.
  void unlink(device& other, link_mode mode);
  /// Links to the device behind `other`. Fails with `link_error::link_down`
  /// if it has disconnected. Throws std::invalid_argument for our own line.
  [[nodiscard]] boost::system::error_code link_line(backplane::line const& other, link_mode mode);
  /// The same, giving up `other`: its reference serves the link, so that
  /// `d.link_line(peer.line(), mode)` costs no reference count update for the
  /// temporary line. `other` is left empty whatever the result (an error code,
  /// or std::invalid_argument for our own line), except when this device is
  /// empty: then std::logic_error is thrown and `other` is untouched.
  [[nodiscard]] boost::system::error_code link_line(backplane::line&& other, link_mode mode);
  void unlink_line(backplane::line const& other, link_mode mode);

  /// The link this device has to `other`, if any (seen from this device).
  [[nodiscard]] std::optional<link_mode> link_to(device_id other) const;
  /// How many devices this one is linked to.
  [[nodiscard]] std::size_t link_count() const;

  /// The oldest message in the mailbox, if any. Never blocks.
  [[nodiscard]] std::optional<message> try_receive();

  /// Waits for the next message.
  ///
  /// @par Completion Signature
  /// `void(boost::system::error_code, message)`
  ///
  /// The handler runs on its associated executor (a coroutine's own), posted,
  /// never inline on the sender's thread. While waiting, the operation counts
  /// as outstanding work on that executor. One receive at a time per device:
  /// a receive started while another waits completes at once (posted) with
  /// `boost::asio::error::already_started`, and the first goes on waiting.
  ///
  /// @par Per-Operation Cancellation
  /// terminal, partial and total alike: a request made before the handler
  /// runs wins. The operation completes with
  /// `boost::asio::error::operation_aborted` and consumes no message, even
  /// when a message has already woken it and its completion is on its way:
  /// that message stays first in the mailbox, in order, for the next receive.
  /// So a receive composed with `||`, `experimental::parallel_group` or a
  /// timeout never loses a message: the branch that loses the race leaves
  /// its message behind. A request after the handler has run does nothing.
  /// Emit the cancellation on the handler's executor (Asio's rule for
  /// slots): a coroutine on a strand, or a single-threaded context, does.
  ///
  /// A handler without an associated executor runs on the system executor
  /// (another thread): in a `parallel_group`, bind the receive's token to
  /// the group's executor (`bind_executor(ex, deferred)`).
  ///
  /// If the receive cannot be set up for lack of memory, it completes
  /// (posted) with `boost::asio::error::no_memory`, having consumed nothing;
  /// only if even that completion cannot be posted does the initiation throw
  /// std::bad_alloc.
  ///
  /// If the execution context is destroyed while the operation waits, the
  /// handler is destroyed without being invoked.
  template <class Token>
  auto async_receive(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, message)>(
        detail::initiate_receive{}, token, checked());
  }

  /// Disconnects: every device that monitors this one receives
  /// `disconnected{id(), f}`, every link is dropped, the mailbox is
  /// discarded, and the device becomes empty.
  void disconnect(std::optional<fault> f = std::nullopt);
  /// Disconnects with `f` and says why: monitors receive
  /// `disconnected{id(), f, cause}` (see `disconnected::cause`).
  void disconnect(fault f, std::exception_ptr cause);

  /// Not API: the state, for the header-only parts of the library.
  [[nodiscard]] detail::state_header* state_for_library() const { return checked(); }

 private:
  [[nodiscard]] detail::state_header* checked() const;
  detail::state_ref state_;
};

}  // namespace backplane
