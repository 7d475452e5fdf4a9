#include "cli/job_wait.h"

#include <gtest/gtest.h>

namespace backout::cli {
namespace {

TEST(JobStateTest, RunningJobIsNotFinished) {
  EXPECT_FALSE(IsJobFinished(Json{{"state", "running"}}));
  EXPECT_FALSE(IsJobFinished(Json{{"state", "queued"}}));
  EXPECT_FALSE(IsJobFinished(Json::object()));
}

TEST(JobStateTest, RolledBackIsSuccess) {
  const Json job = {{"state", "succeeded"}, {"outcome", "rolled_back"}};
  EXPECT_TRUE(IsJobFinished(job));
  EXPECT_TRUE(IsJobSuccessful(job));
}

TEST(JobStateTest, RecoveredIsSuccess) {
  EXPECT_TRUE(IsJobSuccessful(Json{{"state", "succeeded"}, {"outcome", "recovered"}}));
}

TEST(JobStateTest, FailureOutcomesAreNotSuccess) {
  for (const char* outcome : {"failed", "precondition_failed", "interrupted", "partial",
                              "not_recovered", "not_validated", "no_rollback_target"}) {
    EXPECT_FALSE(IsJobSuccessful(Json{{"state", "finished"}, {"outcome", outcome}})) << outcome;
  }
}

TEST(JobStateTest, StateDecidesWithoutOutcome) {
  EXPECT_TRUE(IsJobSuccessful(Json{{"state", "succeeded"}}));
  EXPECT_FALSE(IsJobSuccessful(Json{{"state", "failed"}}));
}

TEST(DescribeJobTest, ShowsStateProgressAndOutcome) {
  const Json job = {{"id", "job-4"}, {"kind", "rollback"},    {"state", "running"},
                    {"attempts", 2}, {"progress", "execute"}, {"outcome", nullptr}};
  EXPECT_EQ(DescribeJob(job, 3.5), "[   3.5s] job-4 rollback running (attempt 2): execute\n");
}

TEST(DescribeJobTest, ShowsOutcomeAndMessage) {
  const Json job = {{"id", "job-4"}, {"kind", "rollback"},  {"state", "finished"},
                    {"attempts", 1}, {"outcome", "failed"}, {"message", "exit status 3"}};
  EXPECT_EQ(DescribeJob(job, 12.3),
            "[  12.3s] job-4 rollback finished, outcome failed (exit status 3)\n");
}

TEST(DescribeJobTest, ShowsStepOfProgressObject) {
  const Json job = {{"id", "7"},
                    {"kind", "rollback"},
                    {"state", "leased"},
                    {"attempts", 1},
                    {"progress", {{"step", "wait"}, {"pid", 42}}},
                    {"outcome", ""}};
  EXPECT_EQ(DescribeJob(job, 0.5), "[   0.5s] 7 rollback leased: wait\n");
}

TEST(JobStateTest, LeasedJobIsNotFinished) {
  EXPECT_FALSE(IsJobFinished(Json{{"state", "leased"}, {"outcome", ""}}));
}

TEST(JobStateTest, InterruptedOutcomeOfSucceededJobFails) {
  EXPECT_FALSE(IsJobSuccessful(Json{{"state", "succeeded"}, {"outcome", "interrupted"}}));
}

}  // namespace
}  // namespace backout::cli
