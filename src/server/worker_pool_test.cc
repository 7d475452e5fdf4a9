#include "server/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace backout::server {
namespace {

using std::chrono::milliseconds;

// Holds tasks until Open(), and counts the tasks that entered.
class Gate {
 public:
  void Enter() {
    std::unique_lock lock(mutex_);
    ++entered_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return open_; });
  }

  void Open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }

  // Waits until `count` tasks entered; false when they did not within 10 s.
  bool AwaitEntered(int count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return entered_ >= count; });
  }

  int entered() {
    std::lock_guard lock(mutex_);
    return entered_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int entered_ = 0;
  bool open_ = false;
};

// Polls `condition` until it holds; false when it did not within 10 s. The bound only keeps a
// broken pool from hanging the test.
template <typename Condition>
bool Eventually(Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

TEST(OnDemandThreadPoolTest, StartsOnlyMinimumThreads) {
  OnDemandThreadPool pool({.min_threads = 2, .max_threads = 64});
  EXPECT_EQ(pool.thread_count(), 2u);
  EXPECT_EQ(pool.threads_started(), 2u);
  pool.shutdown();
  EXPECT_EQ(pool.thread_count(), 0u);
}

TEST(OnDemandThreadPoolTest, RunsManyConcurrentTasks) {
  OnDemandThreadPool pool({.min_threads = 1, .max_threads = 8});
  std::atomic<int> ran{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < 4; ++p) {
    producers.emplace_back([&] {
      for (int i = 0; i < 500; ++i) pool.enqueue([&] { ran++; });
    });
  }
  for (std::thread& producer : producers) producer.join();
  pool.shutdown();
  EXPECT_EQ(ran.load(), 2000);
  EXPECT_LE(pool.threads_started(), 8u);
  EXPECT_EQ(pool.thread_count(), 0u);
}

TEST(OnDemandThreadPoolTest, GrowsToMaximumAndQueuesBeyond) {
  OnDemandThreadPool pool({.min_threads = 1, .max_threads = 6});
  Gate gate;
  for (int i = 0; i < 6; ++i) pool.enqueue([&] { gate.Enter(); });
  ASSERT_TRUE(gate.AwaitEntered(6)) << "entered " << gate.entered() << " of 6 tasks";
  EXPECT_EQ(pool.thread_count(), 6u);

  std::atomic<int> queued_ran{0};
  for (int i = 0; i < 4; ++i) pool.enqueue([&] { queued_ran++; });
  EXPECT_EQ(pool.thread_count(), 6u);
  EXPECT_EQ(pool.threads_started(), 6u);
  EXPECT_EQ(queued_ran.load(), 0) << "a queued task ran while every thread was busy";

  gate.Open();
  ASSERT_TRUE(Eventually([&] { return queued_ran.load() == 4; }));
  pool.shutdown();
  EXPECT_EQ(pool.threads_started(), 6u);
}

TEST(OnDemandThreadPoolTest, IdleThreadTakesTaskWithoutNewThread) {
  OnDemandThreadPool pool({.min_threads = 1, .max_threads = 4});
  ASSERT_TRUE(Eventually([&] { return pool.idle_thread_count() == 1; }));
  for (int i = 0; i < 20; ++i) {
    std::atomic<bool> done{false};
    pool.enqueue([&] { done = true; });
    ASSERT_TRUE(Eventually([&] { return done.load(); })) << "task " << i;
    ASSERT_TRUE(Eventually([&] { return pool.idle_thread_count() == 1; })) << "task " << i;
  }
  EXPECT_EQ(pool.threads_started(), 1u);
}

TEST(OnDemandThreadPoolTest, IdleThreadsExitDownToMinimum) {
  OnDemandThreadPool pool({.min_threads = 1, .max_threads = 4, .idle_timeout = milliseconds(20)});
  Gate gate;
  for (int i = 0; i < 4; ++i) pool.enqueue([&] { gate.Enter(); });
  ASSERT_TRUE(gate.AwaitEntered(4));
  EXPECT_EQ(pool.thread_count(), 4u);
  gate.Open();
  ASSERT_TRUE(Eventually([&] { return pool.thread_count() == 1; }))
      << pool.thread_count() << " threads still run";
  // The last thread outlives several idle timeouts.
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(pool.thread_count(), 1u);

  // The pool still serves after its threads exited, and grows again.
  Gate second;
  for (int i = 0; i < 3; ++i) pool.enqueue([&] { second.Enter(); });
  ASSERT_TRUE(second.AwaitEntered(3));
  EXPECT_EQ(pool.thread_count(), 3u);
  EXPECT_EQ(pool.threads_started(), 6u);
  second.Open();
  pool.shutdown();
  EXPECT_EQ(pool.thread_count(), 0u);
}

TEST(OnDemandThreadPoolTest, ShutdownRunsQueuedTasks) {
  OnDemandThreadPool pool({.min_threads = 1, .max_threads = 2});
  Gate gate;
  std::atomic<int> ran{0};
  for (int i = 0; i < 2; ++i) pool.enqueue([&] { gate.Enter(); });
  ASSERT_TRUE(gate.AwaitEntered(2));
  for (int i = 0; i < 10; ++i) pool.enqueue([&] { ran++; });

  std::atomic<bool> shut_down{false};
  std::thread stopper([&] {
    pool.shutdown();
    shut_down = true;
  });
  // shutdown() waits for the running tasks, so it must not return before the gate opens.
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_FALSE(shut_down.load());
  gate.Open();
  stopper.join();
  EXPECT_EQ(ran.load(), 10);
  EXPECT_EQ(pool.thread_count(), 0u);
}

TEST(OnDemandThreadPoolTest, ShutdownTwiceAndDestructorAreSafe) {
  auto pool = std::make_unique<OnDemandThreadPool>(
      OnDemandThreadPool::Options{.min_threads = 3, .max_threads = 3});
  pool->shutdown();
  pool->shutdown();
  EXPECT_EQ(pool->thread_count(), 0u);
  pool.reset();

  // Without shutdown(), the destructor joins the threads and runs the queued task.
  std::atomic<int> ran{0};
  {
    OnDemandThreadPool unshut({.min_threads = 1, .max_threads = 2});
    unshut.enqueue([&] { ran++; });
  }
  EXPECT_EQ(ran.load(), 1);
}

TEST(OnDemandThreadPoolTest, RejectsInvalidSizes) {
  EXPECT_THROW(OnDemandThreadPool({.min_threads = 0, .max_threads = 0}), std::invalid_argument);
  EXPECT_THROW(OnDemandThreadPool({.min_threads = 5, .max_threads = 4}), std::invalid_argument);
}

}  // namespace
}  // namespace backout::server
