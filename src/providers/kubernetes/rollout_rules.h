#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

// kubectl's rules for Deployments, as pure functions over API objects in JSON: which ReplicaSets
// belong to a Deployment, which one `rollout undo` goes back to, the patch it sends, and how
// `rollout status` reads a Deployment. They follow kubectl 1.32 (pkg/polymorphichelpers
// rollback.go, rollout_status.go and history.go, and pkg/util/deployment).
namespace backout::providers::kubernetes {

inline constexpr std::string_view kRevisionAnnotation = "deployment.kubernetes.io/revision";
inline constexpr std::string_view kRevisionHistoryAnnotation =
    "deployment.kubernetes.io/revision-history";
inline constexpr std::string_view kLastAppliedAnnotation =
    "kubectl.kubernetes.io/last-applied-configuration";
inline constexpr std::string_view kChangeCauseAnnotation = "kubernetes.io/change-cause";
inline constexpr std::string_view kHashLabel = "pod-template-hash";

// The revision annotation as a number: 0 when it is missing, nullopt when it is not a number
// (kubectl then leaves the ReplicaSet out).
std::optional<int64_t> Revision(const nlohmann::json& object);

// The label selector of a workload's spec.selector in query form, as kubectl lists with it.
std::string SelectorQuery(const nlohmann::json& selector);

// The ReplicaSets of `items` whose controller owner is `deployment`, oldest first (creation
// time, then name), the order kubectl iterates them in.
std::vector<nlohmann::json> OwnedReplicaSets(const nlohmann::json& deployment,
                                             const nlohmann::json& items);

// Whether two pod templates are equal once the pod-template-hash label is ignored. Nulls and
// empty objects and lists count as absent, as Kubernetes' semantic equality treats nil and empty
// maps and slices alike.
// NOTE: a pointer field set to an empty object ({}) and the same field left out also compare
// equal here, unlike in Go. Both templates come from the API server with the same defaults, so
// this does not arise in practice.
bool EqualIgnoreHash(const nlohmann::json& a, const nlohmann::json& b);

// The index in `owned` of the ReplicaSet whose template matches the Deployment's: the oldest
// one when several do.
std::optional<size_t> FindNewReplicaSet(const nlohmann::json& deployment,
                                        const std::vector<nlohmann::json>& owned);

// Container images of a pod template, in container order.
std::vector<std::string> Images(const nlohmann::json& template_spec);

// The version Backout records for a pod template: the image of a single container, or
// NAME=IMAGE pairs joined by commas for several.
std::string VersionOf(const nlohmann::json& template_spec);

// The ReplicaSet a rollback goes to, and the rule that chose it.
struct Target {
  nlohmann::json replica_set;
  int64_t revision = 0;
  std::string rule;  // in words, for the assessment
  std::vector<std::string> notes;
};

// A failed target lookup, with kubectl's message where kubectl has one.
struct NoTarget {
  enum class Kind { kNoHistory, kRevisionNotFound, kNoMatch } kind;
  std::string message;
};

// kubectl's choice: with `to_revision` 0 the ReplicaSet with the second-highest revision among
// the old ReplicaSets and the new one, else the first with that revision.
std::expected<Target, NoTarget> ChooseKubectlTarget(const nlohmann::json& deployment,
                                                    const std::vector<nlohmann::json>& owned,
                                                    int64_t to_revision);

// Backout's choice for a named version. `revision:N` works as kubectl's --to-revision, and
// `replicaset:NAME` or a bare ReplicaSet name, `hash:HASH` or a bare pod-template-hash pick that
// ReplicaSet. Anything else is a version as VersionOf writes it; when several ReplicaSets run it,
// the highest revision wins and the target carries a note.
std::expected<Target, NoTarget> MatchNamedTarget(const nlohmann::json& deployment,
                                                 const std::vector<nlohmann::json>& owned,
                                                 std::string_view version);

// The annotations kubectl writes on undo: the Deployment's own values of the keys the
// controller owns, then every other annotation of the target ReplicaSet. The Deployment's other
// annotations are dropped.
nlohmann::json UndoAnnotations(const nlohmann::json& deployment, const nlohmann::json& replica_set);

// The target's pod template without the pod-template-hash label.
nlohmann::json UndoTemplate(const nlohmann::json& replica_set);

// kubectl's JSON patch: replace /spec/template, then replace /metadata/annotations.
nlohmann::json UndoPatch(const nlohmann::json& deployment, const nlohmann::json& replica_set);

// The verdict of `kubectl rollout status` on a Deployment.
struct RolloutStatus {
  enum class State { kWaiting, kDone, kFailed } state = State::kWaiting;
  std::string message;  // kubectl's words
};

// kubectl's status viewer. `ignore_deadline_condition` skips the ProgressDeadlineExceeded check,
// for a condition that is older than the rollback.
RolloutStatus DeploymentRolloutStatus(const nlohmann::json& deployment,
                                      bool ignore_deadline_condition = false);

// The condition of `type` in a Deployment's status, or null.
nlohmann::json FindCondition(const nlohmann::json& deployment, std::string_view type);

// A value of metadata.annotations, or "" when absent.
std::string Annotation(const nlohmann::json& object, std::string_view key);

}  // namespace backout::providers::kubernetes
