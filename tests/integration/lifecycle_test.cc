// One incident's whole life through the CLI against a real server on SQLite.
#include <gtest/gtest.h>

#include "scenarios.h"

namespace backout::integration {
namespace {

TEST(LifecycleTest, WholeIncidentOnSqlite) {
  Deployment deployment;
  RunWholeLifecycle(deployment);
}

}  // namespace
}  // namespace backout::integration
