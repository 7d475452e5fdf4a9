#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "core/time.h"
#include "store/store.h"

namespace backout::app {

// Extends a job's lease in the background while the job runs, and records when the lease was
// lost to another worker. JobRunner::RunOnce keeps one for every job it leases.
class LeaseKeeper {
 public:
  LeaseKeeper(store::Store& store, int64_t job_id, int64_t fencing_token, core::Duration lease);
  ~LeaseKeeper();
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  bool lost() const { return lost_; }

 private:
  void Run(std::stop_token stop);

  store::Store& store_;
  int64_t job_id_;
  int64_t fencing_token_;
  core::Duration lease_;
  std::atomic<bool> lost_{false};
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::jthread thread_;
};

}  // namespace backout::app
