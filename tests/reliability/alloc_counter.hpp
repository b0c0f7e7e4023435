#pragma once
// A counting global operator new/delete for the reliability tests: live
// allocations (to prove that a run gives back what it took) and a switch that
// makes the n-th allocation from now throw std::bad_alloc (fault injection).
// Linked into its own test executables only (alloc_counter.cpp replaces the
// global operators for the whole binary).

#include <cstdint>

namespace backplane::test::alloc {

/// Allocations made and not yet freed, by every thread, since the start.
[[nodiscard]] std::int64_t live() noexcept;
/// Allocations made so far (a clock for fault injection).
[[nodiscard]] std::uint64_t total() noexcept;
/// The n-th allocation from now (1 = the next one), on any thread, throws
/// std::bad_alloc; only that one. 0 disarms (and leaves `fired` as it was).
void fail_at(std::uint64_t n) noexcept;
/// Whether the failure armed last has fired.
[[nodiscard]] bool fired() noexcept;

}  // namespace backplane::test::alloc
