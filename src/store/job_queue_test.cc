// The durable job queue, run against SQLite and PostgreSQL alike.

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "store/store_test_support.h"

namespace backout::store {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;

class JobQueueTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (HasFatalFailure()) return;
    store_ = OpenStore();
    ASSERT_NE(store_, nullptr);
  }

  int64_t Enqueue(std::string_view kind, core::Time run_after,
                  const nlohmann::json& payload = nlohmann::json::object()) {
    int64_t id = 0;
    auto written = store_->Write([&](Transaction& transaction) -> core::Result<void> {
      auto enqueued = transaction.EnqueueJob(kind, "incident/INC-1", payload, run_after);
      if (!enqueued) return std::unexpected(enqueued.error());
      id = *enqueued;
      return {};
    });
    EXPECT_TRUE(written.has_value()) << written.error().message;
    return id;
  }

  std::optional<JobLease> Lease(std::string_view owner, seconds lease_for = seconds(30)) {
    auto lease = store_->LeaseJob(owner, {"rollback"}, lease_for);
    EXPECT_TRUE(lease.has_value()) << lease.error().message;
    return lease.value_or(std::nullopt);
  }

  std::optional<Job> GetJob(int64_t id) {
    std::optional<Job> job;
    auto read = store_->Read([&](Transaction& transaction) -> core::Result<void> {
      auto found = transaction.GetJob(id);
      if (!found) return std::unexpected(found.error());
      job = std::move(*found);
      return {};
    });
    EXPECT_TRUE(read.has_value()) << read.error().message;
    return job;
  }

  core::Result<void> Complete(int64_t id, int64_t token) {
    return store_->Write(
        [&](Transaction& transaction) { return transaction.CompleteJob(id, token); });
  }

  std::unique_ptr<Store> store_;
};

TEST_P(JobQueueTest, LeaseTakesQueuedJobWithFirstToken) {
  const int64_t id = Enqueue("rollback", clock_.Now(), {{"step", "plan"}});

  auto lease = Lease("worker-a");

  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(lease->job.id, id);
  EXPECT_EQ(lease->fencing_token, 1);
  EXPECT_EQ(lease->job.state, JobState::kLeased);
  EXPECT_EQ(lease->job.attempts, 1);
  EXPECT_EQ(lease->job.lease_owner, "worker-a");
  EXPECT_EQ(lease->job.lease_expires, clock_.Now() + seconds(30));
  EXPECT_EQ(lease->job.payload["step"], "plan");
  EXPECT_EQ(lease->job.subject, "incident/INC-1");
}

TEST_P(JobQueueTest, LeasedJobIsNotLeasedTwice) {
  Enqueue("rollback", clock_.Now());
  ASSERT_TRUE(Lease("worker-a").has_value());

  EXPECT_FALSE(Lease("worker-b").has_value());
}

TEST_P(JobQueueTest, LeaseWaitsForRunAfter) {
  Enqueue("rollback", clock_.Now() + seconds(60));

  EXPECT_FALSE(Lease("worker-a").has_value());
  clock_.Advance(seconds(60));
  EXPECT_TRUE(Lease("worker-a").has_value());
}

TEST_P(JobQueueTest, LeaseTakesOnlyRequestedKinds) {
  Enqueue("notification", clock_.Now());

  EXPECT_FALSE(Lease("worker-a").has_value());
  auto lease = store_->LeaseJob("worker-a", {"validation", "notification"}, seconds(30));
  ASSERT_TRUE(lease.has_value()) << lease.error().message;
  EXPECT_TRUE(lease->has_value());
}

TEST_P(JobQueueTest, LeaseTakesOldestFirst) {
  const int64_t later = Enqueue("rollback", clock_.Now() - seconds(10));
  const int64_t earlier = Enqueue("rollback", clock_.Now() - seconds(20));

  auto first = Lease("worker-a");
  auto second = Lease("worker-a");

  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(first->job.id, earlier);
  EXPECT_EQ(second->job.id, later);
}

TEST_P(JobQueueTest, ExpiredLeaseIsTakenWithHigherToken) {
  const int64_t id = Enqueue("rollback", clock_.Now());
  auto first = Lease("worker-a");
  ASSERT_TRUE(first.has_value());
  clock_.Advance(seconds(31));

  auto second = Lease("worker-b");

  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->job.id, id);
  EXPECT_EQ(second->fencing_token, first->fencing_token + 1);
  EXPECT_EQ(second->job.attempts, 2);
  EXPECT_EQ(second->job.lease_owner, "worker-b");
}

TEST_P(JobQueueTest, StaleTokenCannotComplete) {
  const int64_t id = Enqueue("rollback", clock_.Now());
  auto first = Lease("worker-a");
  ASSERT_TRUE(first.has_value());
  clock_.Advance(seconds(31));
  auto second = Lease("worker-b");
  ASSERT_TRUE(second.has_value());

  auto stale = Complete(id, first->fencing_token);

  ASSERT_FALSE(stale.has_value());
  EXPECT_EQ(stale.error().code, core::ErrorCode::kConflict);
  EXPECT_THAT(stale.error().message, HasSubstr("fencing token 1"));
  auto current = Complete(id, second->fencing_token);
  ASSERT_TRUE(current.has_value()) << current.error().message;
  auto job = GetJob(id);
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->state, JobState::kSucceeded);
}

TEST_P(JobQueueTest, StaleTokenCannotSaveProgress) {
  const int64_t id = Enqueue("rollback", clock_.Now(), {{"step", "plan"}});
  auto first = Lease("worker-a");
  ASSERT_TRUE(first.has_value());
  clock_.Advance(seconds(31));
  ASSERT_TRUE(Lease("worker-b").has_value());

  auto saved = store_->Write([&](Transaction& transaction) {
    return transaction.SaveJobProgress(id, first->fencing_token, {{"step", "execute"}});
  });

  ASSERT_FALSE(saved.has_value());
  EXPECT_EQ(saved.error().code, core::ErrorCode::kConflict);
  auto job = GetJob(id);
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->payload["step"], "plan");
}

TEST_P(JobQueueTest, SaveProgressKeepsPayload) {
  const int64_t id = Enqueue("rollback", clock_.Now(), {{"step", "plan"}});
  auto lease = Lease("worker-a");
  ASSERT_TRUE(lease.has_value());

  auto saved = store_->Write([&](Transaction& transaction) {
    return transaction.SaveJobProgress(id, lease->fencing_token, {{"step", "execute"}});
  });

  ASSERT_TRUE(saved.has_value()) << saved.error().message;
  auto job = GetJob(id);
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->payload["step"], "execute");
  EXPECT_EQ(job->state, JobState::kLeased);
}

TEST_P(JobQueueTest, CheckFenceAcceptsCurrentToken) {
  const int64_t id = Enqueue("rollback", clock_.Now());
  auto lease = Lease("worker-a");
  ASSERT_TRUE(lease.has_value());

  auto current = store_->Write(
      [&](Transaction& transaction) { return transaction.CheckFence(id, lease->fencing_token); });
  auto wrong = store_->Write([&](Transaction& transaction) {
    return transaction.CheckFence(id, lease->fencing_token + 1);
  });

  EXPECT_TRUE(current.has_value()) << current.error().message;
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().code, core::ErrorCode::kConflict);
}

TEST_P(JobQueueTest, HeartbeatExtendsLease) {
  const int64_t id = Enqueue("rollback", clock_.Now());
  auto lease = Lease("worker-a");
  ASSERT_TRUE(lease.has_value());
  clock_.Advance(seconds(20));

  auto beat = store_->HeartbeatJob(id, lease->fencing_token, seconds(30));
  ASSERT_TRUE(beat.has_value()) << beat.error().message;
  clock_.Advance(seconds(20));  // past the first lease's end, inside the extended one

  EXPECT_FALSE(Lease("worker-b").has_value());
  auto job = GetJob(id);
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->lease_expires, clock_.Now() + seconds(10));
}

TEST_P(JobQueueTest, HeartbeatWithStaleTokenConflicts) {
  const int64_t id = Enqueue("rollback", clock_.Now());
  auto first = Lease("worker-a");
  ASSERT_TRUE(first.has_value());
  clock_.Advance(seconds(31));
  ASSERT_TRUE(Lease("worker-b").has_value());

  auto beat = store_->HeartbeatJob(id, first->fencing_token, seconds(30));

  ASSERT_FALSE(beat.has_value());
  EXPECT_EQ(beat.error().code, core::ErrorCode::kConflict);
}

TEST_P(JobQueueTest, FailWithRetryQueuesAgainAfterBackoff) {
  const int64_t id = Enqueue("rollback", clock_.Now());
  auto lease = Lease("worker-a");
  ASSERT_TRUE(lease.has_value());

  auto failed = store_->Write([&](Transaction& transaction) {
    return transaction.FailJob(id, lease->fencing_token, "provider timed out",
                               clock_.Now() + seconds(15));
  });

  ASSERT_TRUE(failed.has_value()) << failed.error().message;
  auto job = GetJob(id);
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->state, JobState::kQueued);
  EXPECT_EQ(job->last_error, "provider timed out");
  EXPECT_EQ(job->run_after, clock_.Now() + seconds(15));
  EXPECT_FALSE(Lease("worker-a").has_value());
  clock_.Advance(seconds(15));
  auto retry = Lease("worker-a");
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(retry->job.attempts, 2);
  EXPECT_EQ(retry->fencing_token, lease->fencing_token + 1);
}

TEST_P(JobQueueTest, FailWithoutRetryIsFinal) {
  const int64_t id = Enqueue("rollback", clock_.Now());
  auto lease = Lease("worker-a");
  ASSERT_TRUE(lease.has_value());

  auto failed = store_->Write([&](Transaction& transaction) {
    return transaction.FailJob(id, lease->fencing_token, "target missing", std::nullopt);
  });

  ASSERT_TRUE(failed.has_value()) << failed.error().message;
  auto job = GetJob(id);
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->state, JobState::kFailed);
  EXPECT_EQ(job->last_error, "target missing");
  clock_.Advance(seconds(3600));
  EXPECT_FALSE(Lease("worker-a").has_value());
}

TEST_P(JobQueueTest, ReleaseMakesJobLeasableAtOnce) {
  const int64_t id = Enqueue("rollback", clock_.Now());
  auto first = Lease("worker-a");
  ASSERT_TRUE(first.has_value());

  auto released = store_->ReleaseJob(id, first->fencing_token);

  ASSERT_TRUE(released.has_value()) << released.error().message;
  auto second = Lease("worker-b");
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->job.id, id);
  EXPECT_EQ(second->fencing_token, first->fencing_token + 1);
}

TEST_P(JobQueueTest, ReleaseWithStaleTokenConflicts) {
  const int64_t id = Enqueue("rollback", clock_.Now());
  auto first = Lease("worker-a");
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(store_->ReleaseJob(id, first->fencing_token).has_value());

  auto again = store_->ReleaseJob(id, first->fencing_token);

  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, core::ErrorCode::kConflict);
}

TEST_P(JobQueueTest, EnqueueRollsBackWithItsTransaction) {
  auto written = store_->Write([&](Transaction& transaction) -> core::Result<void> {
    auto enqueued = transaction.EnqueueJob("rollback", "incident/INC-1", {}, clock_.Now());
    if (!enqueued) return std::unexpected(enqueued.error());
    return core::MakeError(core::ErrorCode::kInternal, "rolled back on purpose");
  });

  ASSERT_FALSE(written.has_value());
  EXPECT_FALSE(Lease("worker-a").has_value());
}

TEST_P(JobQueueTest, ListJobsBySubject) {
  Enqueue("rollback", clock_.Now());
  Enqueue("validation", clock_.Now());

  std::vector<Job> jobs;
  auto read = store_->Read([&](Transaction& transaction) -> core::Result<void> {
    auto listed = transaction.ListJobs("incident/INC-1");
    if (!listed) return std::unexpected(listed.error());
    jobs = std::move(*listed);
    return {};
  });

  ASSERT_TRUE(read.has_value()) << read.error().message;
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].kind, "rollback");
  EXPECT_EQ(jobs[1].kind, "validation");
}

TEST_P(JobQueueTest, ConcurrentWorkersLeaseEachJobOnce) {
  constexpr int kJobs = 24;
  constexpr int kWorkers = 4;
  for (int i = 0; i < kJobs; ++i) Enqueue("rollback", clock_.Now());
  // A second store stands for a second replica leasing from the same database.
  auto replica = OpenStore();
  ASSERT_NE(replica, nullptr);
  std::mutex mutex;
  std::vector<int64_t> leased;

  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      Store& store = w % 2 == 0 ? *store_ : *replica;
      const std::string owner = fmt::format("worker-{}", w);
      while (true) {
        auto lease = store.LeaseJob(owner, {"rollback"}, seconds(300));
        if (!lease) {
          ADD_FAILURE() << lease.error().message;
          return;
        }
        if (!lease->has_value()) return;
        auto done = store.Write([&](Transaction& transaction) {
          return transaction.CompleteJob((*lease)->job.id, (*lease)->fencing_token);
        });
        EXPECT_TRUE(done.has_value()) << done.error().message;
        std::lock_guard lock(mutex);
        leased.push_back((*lease)->job.id);
      }
    });
  }
  for (std::thread& worker : workers) worker.join();

  std::set<int64_t> unique(leased.begin(), leased.end());
  EXPECT_EQ(leased.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(unique.size(), static_cast<size_t>(kJobs));
}

BACKOUT_INSTANTIATE_FOR_BOTH_BACKENDS(JobQueueTest);

}  // namespace
}  // namespace backout::store
