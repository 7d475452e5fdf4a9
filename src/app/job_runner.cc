#include "app/job_runner.h"

#include <spdlog/spdlog.h>

#include "app/jobs.h"
#include "app/lease_keeper.h"

namespace backout::app {

LeaseKeeper::LeaseKeeper(store::Store& store, int64_t job_id, int64_t fencing_token,
                         core::Duration lease)
    : store_(store),
      job_id_(job_id),
      fencing_token_(fencing_token),
      lease_(lease),
      thread_([this](std::stop_token stop) { Run(stop); }) {}

LeaseKeeper::~LeaseKeeper() {
  thread_.request_stop();
  wake_.notify_all();
}

void LeaseKeeper::Run(std::stop_token stop) {
  // Renew at a third of the lease, so two missed renewals still leave time for a third.
  const auto interval = std::chrono::duration_cast<std::chrono::milliseconds>(lease_ / 3);
  std::unique_lock lock(mutex_);
  while (!stop.stop_requested()) {
    if (wake_.wait_for(lock, stop, interval, [] { return false; })) return;
    if (stop.stop_requested()) return;
    auto renewed = store_.HeartbeatJob(job_id_, fencing_token_, lease_);
    if (!renewed) {
      spdlog::warn("component=jobs job={} event=heartbeat_failed error=\"{}\"", job_id_,
                   renewed.error().message);
      if (renewed.error().code == core::ErrorCode::kConflict) {
        lost_ = true;
        return;
      }
    }
  }
}

JobRunner::JobRunner(ControlPlane& plane, JobRunnerOptions options)
    : plane_(plane), options_(std::move(options)) {}

core::Result<bool> JobRunner::RunOnce(std::stop_token stop) {
  auto leased =
      plane_.store().LeaseJob(options_.owner,
                              {kRollbackJob, kValidationJob, kReconcileJob, kNotificationJob,
                               kActionItemDueJob, kSignalCorrelationJob},
                              options_.lease);
  if (!leased) return std::unexpected(leased.error());
  if (!leased->has_value()) return false;
  const store::JobLease& lease = **leased;

  spdlog::info("component=jobs job={} kind={} subject={} event=leased attempt={} owner={}",
               lease.job.id, lease.job.kind, lease.job.subject, lease.job.attempts, options_.owner);
  {
    std::lock_guard lock(lease_mutex_);
    current_lease_ = std::make_pair(lease.job.id, lease.fencing_token);
  }
  {
    // Every kind of job may outlast its lease: a provider call, a check, a webhook, or the
    // correlation of a large delivery of alerts.
    LeaseKeeper keeper(plane_.store(), lease.job.id, lease.fencing_token, options_.lease);
    if (lease.job.kind == kRollbackJob) {
      RunRollback(lease, stop);
    } else if (lease.job.kind == kReconcileJob) {
      RunReconcile(lease);
    } else if (lease.job.kind == kNotificationJob) {
      RunNotification(lease);
    } else if (lease.job.kind == kActionItemDueJob) {
      RunActionItemDue(lease);
    } else if (lease.job.kind == kSignalCorrelationJob) {
      plane_.RunSignalCorrelation(lease);
    } else {
      RunValidation(lease, stop);
    }
  }
  {
    std::lock_guard lock(lease_mutex_);
    current_lease_.reset();
  }
  if (options_.on_finished) {
    std::string outcome;
    auto read = plane_.store().Read([&](store::Transaction& tx) -> core::Result<void> {
      auto job = tx.GetJob(lease.job.id);
      if (job && *job && (*job)->state != store::JobState::kQueued) {
        outcome = (*job)->payload.value("outcome", "");
      }
      return {};
    });
    if (read) options_.on_finished(lease.job.kind, outcome);
  }
  return true;
}

void JobRunner::ReleaseCurrentLease() {
  std::lock_guard lock(lease_mutex_);
  if (!current_lease_) return;
  auto released = plane_.store().ReleaseJob(current_lease_->first, current_lease_->second);
  spdlog::warn("component=jobs job={} event=lease_released_at_shutdown ok={}",
               current_lease_->first, released.has_value());
  current_lease_.reset();
}

}  // namespace backout::app
