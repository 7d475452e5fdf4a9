#include "core/id_order.h"

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace backout::core {
namespace {

TEST(IdOrderTest, PrefixDropsTrailingDigits) {
  EXPECT_EQ(IdPrefix("CHG-12"), "CHG-");
  EXPECT_EQ(IdPrefix("admin"), "admin");
  EXPECT_EQ(IdPrefix("42"), "");
  EXPECT_EQ(IdPrefix(""), "");
}

TEST(IdOrderTest, SamePrefixSortsByNumber) {
  std::vector<std::string> ids = {"CHG-10", "CHG-2", "CHG-1", "INC-3", "CHG-100", "CHG-11"};
  std::ranges::sort(ids, IdLess);
  EXPECT_EQ(ids,
            (std::vector<std::string>{"CHG-1", "CHG-2", "CHG-10", "CHG-11", "CHG-100", "INC-3"}));
}

TEST(IdOrderTest, NamesKeepByteOrder) {
  std::vector<std::string> names = {"lead-1", "ci-bot", "admin", "auditor"};
  std::ranges::sort(names, IdLess);
  EXPECT_EQ(names, (std::vector<std::string>{"admin", "auditor", "ci-bot", "lead-1"}));
}

}  // namespace
}  // namespace backout::core
