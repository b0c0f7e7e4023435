#pragma once
// nested_hook: what a nested supervisor leaves in its parent's child run, so that the parent can
// both kill it and reach it for the tree view.

#include <memory>

namespace backplane::detail {

class supervisor_impl;

/// Set by start_nested as the child run's `on_kill`. The parent kills a nested supervisor by
/// calling it (on the nested supervisor's executor), and finds the nested supervisor behind a
/// running child with `on_kill.target<nested_hook>()`: one named type serves both, so that
/// nothing is added to child_context for the tree view.
struct nested_hook {
  std::shared_ptr<supervisor_impl> impl;
  void operator()() const;
};

}  // namespace backplane::detail
