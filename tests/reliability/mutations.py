#!/usr/bin/env python3
"""The mutations of docs/reliability.md, to show that the tests bite.

    tests/reliability/mutations.py <name> apply|revert

Apply one (C1..C8: the core; S1..S5: the supervisors) to the working tree, rebuild the tests,
run them (see docs/reliability.md for which caught it), then revert it. Never commit one.
"""
import os
import sys

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
M = {
 'C1': ('backplane/src/device_state.cpp',
  '''    if (!s->connected) return;
    s->connected = false;
    if (s->links.size() != 0) links = s->links.take();
    w = std::exchange(s->parked, nullptr);
    s->inbox.clear();
  }''',
  '''    if (!s->connected) return;
    if (s->links.size() != 0) links = s->links.take();
  }
  {
    std::lock_guard lock(s->mu);  // MUTATION C1: a link may slip in between
    s->connected = false;
    w = std::exchange(s->parked, nullptr);
    s->inbox.clear();
  }'''),
 'C2': ('backplane/src/device_state.cpp',
  '''          peer->inbox.push(disconnected{s->id, f, cause});''',
  '''          peer->inbox.push(disconnected{s->id, f, cause});
          peer->inbox.push(disconnected{s->id, f, cause});  // MUTATION C2'''),
 'C3': ('backplane/src/device_state.cpp',
  '''void unlink(state_header* self, state_header* other, link_mode mode) noexcept {
  if (self == other) return;''',
  '''void unlink(state_header* self, state_header* other, link_mode mode) noexcept {
  if (self == other || true) return;  // MUTATION C3'''),
 'C4': ('backplane/src/device_state.cpp',
  '''          peer->inbox.push(disconnected{s->id, f, cause});''',
  '''          peer->inbox.push(disconnected{s->id, f, nullptr}); (void)cause;  // MUTATION C4'''),
 'C5': ('backplane/src/mailbox.hpp',
  '''  [[nodiscard]] std::optional<message> pop() {
    if (!head_) return std::nullopt;''',
  '''  [[nodiscard]] std::optional<message> pop() {
    if (!head_) return std::nullopt;
    if (next_ < rest_.size()) {  // MUTATION C5: LIFO
      std::optional<message> o(std::move(rest_.back()));
      rest_.pop_back();
      return o;
    }'''),
 'C6': ('backplane/src/device_state.cpp',
  '''    if (!s->connected) return false;
    s->inbox.push(std::move(m));''',
  '''    if (!s->connected) return true;  // MUTATION C6
    s->inbox.push(std::move(m));'''),
 'C7': ('backplane/src/device_state.cpp',
  '''      if ((e.bits & notify_bit) && peer->connected) {''',
  '''      if ((e.bits & static_cast<std::uint8_t>(link_mode::monitor)) && peer->connected) {  // MUTATION C7'''),
 'C8': ('backplane/src/device_state.cpp',
  '''  if (!b->connected) return link_error::link_down;''',
  '''  // MUTATION C8: link_down never reported'''),
 'S1': ('supervisor/src/supervisor_stop.cpp',
  '''  if (ended->fault && !ended->killed) {''',
  '''  if (ended->fault && !ended->killed && !pol.is_brutal()) {  // MUTATION S1'''),
 'S2': ('supervisor/src/reasons.cpp',
  '''  return !nested && gone.fault && gone.fault->what() == fault::kind::error &&''',
  '''  return false && !nested && gone.fault && gone.fault->what() == fault::kind::error &&  // MUTATION S2'''),
 'S3': ('supervisor/src/dynamic_supervisor.cpp',
  '''    if (e) impl->crashed(e);''',
  '''    (void)e;  // MUTATION S3: detached'''),
 'S4': ('supervisor/src/dynamic_child.cpp',
  '''  if (ec == asio::error::no_memory) {''',
  '''  if (false && ec == asio::error::no_memory) {  // MUTATION S4'''),
 'S5': ('supervisor/src/child_run.cpp',
  '''  if (ec == asio::error::no_memory) {''',
  '''  if (false && ec == asio::error::no_memory) {  // MUTATION S5'''),
}
name, what = sys.argv[1], sys.argv[2]
path, old, new = M[name]
s = open(path).read()
if what == 'apply':
    assert s.count(old) == 1, (name, s.count(old))
    s = s.replace(old, new)
else:
    assert s.count(new) == 1, name
    s = s.replace(new, old)
open(path, 'w').write(s)
print(name, what, path)
