// device_index (supervisor/src): the open-addressing table from device ids to
// child records, checked against std::unordered_map over random operations.

#include "device_index.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

namespace {

using backplane::device_id;
using backplane::detail::device_index;

TEST(DeviceIndex, EmptyFindsNothing) {
  device_index<int> idx;
  EXPECT_EQ(idx.find(device_id(1)), nullptr);
  EXPECT_EQ(idx.find(device_id{}), nullptr);
  EXPECT_FALSE(idx.erase(device_id(1)));
  EXPECT_EQ(idx.size(), 0u);
}

TEST(DeviceIndex, InsertReplaceFindErase) {
  device_index<int> idx;
  int a = 1, b = 2;
  idx.insert(device_id(7), &a);
  EXPECT_EQ(idx.find(device_id(7)), &a);
  idx.insert(device_id(7), &b);  // replaces
  EXPECT_EQ(idx.find(device_id(7)), &b);
  EXPECT_EQ(idx.size(), 1u);
  EXPECT_TRUE(idx.erase(device_id(7)));
  EXPECT_FALSE(idx.erase(device_id(7)));
  EXPECT_EQ(idx.find(device_id(7)), nullptr);
  EXPECT_EQ(idx.size(), 0u);
}

TEST(DeviceIndex, MatchesAMapOverRandomOperations) {
  // Small key ranges force long probe runs, wrap-around and many backward
  // shifts; the large one exercises growth.
  for (std::uint64_t range : {24ull, 200ull, 100000ull}) {
    std::mt19937_64 rng(range);
    device_index<int> idx;
    std::unordered_map<std::uint64_t, int*> model;
    std::vector<int> values(64);
    for (int step = 0; step < 200000; ++step) {
      std::uint64_t const key = 1 + rng() % range;
      switch (rng() % 3) {
        case 0: {
          int* v = &values[rng() % values.size()];
          idx.insert(device_id(key), v);
          model[key] = v;
          break;
        }
        case 1: ASSERT_EQ(idx.erase(device_id(key)), model.erase(key) == 1) << key; break;
        default: {
          auto it = model.find(key);
          ASSERT_EQ(idx.find(device_id(key)), it == model.end() ? nullptr : it->second) << key;
        }
      }
      ASSERT_EQ(idx.size(), model.size());
    }
    for (auto const& [key, v] : model) ASSERT_EQ(idx.find(device_id(key)), v) << key;
  }
}

}  // namespace
