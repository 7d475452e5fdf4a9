#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>

#include "app/control_plane.h"
#include "core/error.h"
#include "store/store.h"

namespace backout::app {

struct JobRunnerOptions {
  std::string owner;  // lease owner, unique per worker thread: host, process id, thread
  core::Duration lease = std::chrono::seconds(15);
  // Readiness polling after a rollback: this many attempts, this far apart.
  int readiness_attempts = 30;
  std::chrono::milliseconds readiness_interval{2000};
  // A step that fails for a reason that may pass (the tool unreachable) is retried this many
  // times, this far apart, before the rollback ends `failed`.
  int max_attempts = 5;
  core::Duration retry_after = std::chrono::seconds(30);
  // Called after each leased job's run with its kind and the outcome or finding it recorded
  // (empty when the run ended without one, such as a retry or a lost lease).
  std::function<void(std::string_view kind, std::string_view outcome)> on_finished;
};

// Runs durable rollback and validation jobs. Each step commits its progress with the lease's
// fencing token, so a worker whose lease expired cannot overwrite its successor's work. A
// rollback found at the "executing" step (its worker died mid-action) is resumed through the
// provider's Resume, never run again.
//
// One JobRunner per worker thread; the ControlPlane it borrows is shared.
class JobRunner {
 public:
  JobRunner(ControlPlane& plane, JobRunnerOptions options);

  // Leases one due job and runs it to its end. When `stop` is requested, the current step
  // finishes and the lease is released so the job continues elsewhere or after a restart.
  // Returns whether a job was leased.
  core::Result<bool> RunOnce(std::stop_token stop);

  // Gives back the lease of the job running now, if any, so another worker or the next start
  // takes it over. For shutdown after the grace period: the running step's later commits then
  // fail their fencing check instead of overwriting the successor. Thread-safe.
  void ReleaseCurrentLease();

 private:
  void RunRollback(const store::JobLease& lease, std::stop_token stop);
  void RunValidation(const store::JobLease& lease, std::stop_token stop);
  // Reconciliation and notifications (reconciliation.cc, notification_job.cc).
  void RunReconcile(const store::JobLease& lease);
  void RunNotification(const store::JobLease& lease);
  void RunActionItemDue(const store::JobLease& lease);

  ControlPlane& plane_;
  JobRunnerOptions options_;
  std::mutex lease_mutex_;
  std::optional<std::pair<int64_t, int64_t>> current_lease_;  // job id, fencing token
};

}  // namespace backout::app
