#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/time.h"

// Backout's readiness rules for a Deployment after a rollback: kubectl's rollout-status rules,
// plus what kubectl misses. New pods that cannot start fail the check at once, naming the pod
// and the reason, and restarts fail it once they reach a limit. Success needs a soak with no
// restarts, and a condition last updated before the rollback is never evidence.
namespace backout::providers::kubernetes {

// The objects one readiness check reads.
struct ClusterView {
  nlohmann::json deployment;
  std::vector<nlohmann::json> replica_sets;  // owned by the Deployment
  std::vector<nlohmann::json> pods;          // matching the Deployment's selector
};

struct ReadinessRules {
  std::chrono::milliseconds soak{30'000};
  // Restarts of one container, counted from the rollback, that fail readiness before the
  // rollout completes. During the soak any restart fails it.
  int restart_limit = 3;
};

enum class Verdict { kWaiting, kReady, kFailed };

struct ReadinessReport {
  Verdict verdict = Verdict::kWaiting;
  std::string message;         // for people: what is awaited, what succeeded or why it failed
  std::string kubectl_status;  // what `kubectl rollout status` would print now
  std::string pod;             // the failing pod, when a pod failed
  std::string reason;          // CrashLoopBackOff, Restarted, ProgressDeadlineExceeded, …
};

// Waiting reasons of a container that fail readiness at once.
bool IsFatalWaitingReason(std::string_view reason);

// Follows one rollout across polls. `since` is when the rollback was sent: Progressing
// conditions last updated before it are ignored, and restart counts of older pods are taken
// from the first poll. `expected_template`, when set, is the template the rollback wrote; a
// Deployment that no longer carries it fails with reason TemplateChanged.
class ReadinessTracker {
 public:
  ReadinessTracker(ReadinessRules rules, std::optional<core::Time> since,
                   std::optional<nlohmann::json> expected_template);

  ReadinessReport Observe(const ClusterView& view, core::Time now);

 private:
  ReadinessRules rules_;
  std::optional<core::Time> since_;
  std::optional<nlohmann::json> expected_template_;
  std::map<std::string, int64_t> baseline_;    // "pod/container" -> restarts before counting
  std::map<std::string, int64_t> soak_start_;  // "pod/container" -> restarts when soak began
  std::optional<core::Time> done_since_;
};

// One check with no history, for CheckReadiness: kubectl's rules, fatal waiting reasons, and a
// soak read from the pods' own timestamps (every new pod Ready and its containers running for
// at least the soak).
ReadinessReport EvaluateOnce(const ClusterView& view, const ReadinessRules& rules, core::Time now);

}  // namespace backout::providers::kubernetes
