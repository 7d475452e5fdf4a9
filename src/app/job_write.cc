#include "app/job_write.h"

#include <spdlog/spdlog.h>

namespace backout::app {

core::Result<void> WriteForJob(store::Store& store, const store::JobLease& lease,
                               std::string_view description, const store::TransactionBody& body) {
  core::Result<void> written;
  for (int attempt = 1; attempt <= kJobWriteAttempts; ++attempt) {
    bool lease_held = false;
    written = store.Write([&](store::Transaction& tx) -> core::Result<void> {
      if (auto fenced = tx.CheckFence(lease.job.id, lease.fencing_token); !fenced) return fenced;
      lease_held = true;
      return body(tx);
    });
    const bool lost_race = !written && (written.error().code == core::ErrorCode::kConflict ||
                                        written.error().code == core::ErrorCode::kAlreadyExists);
    if (!lost_race || !lease_held) return written;
    if (attempt < kJobWriteAttempts) {
      spdlog::debug(
          "component=jobs job={} kind={} event=write_conflict_retry description=\"{}\" attempt={} "
          "error=\"{}\"",
          lease.job.id, lease.job.kind, description, attempt, written.error().message);
    }
  }
  return std::unexpected(written.error().WithContext(
      fmt::format("{}: gave up after {} writes in a row that conflicted with concurrent writers",
                  description, kJobWriteAttempts)));
}

}  // namespace backout::app
