#include "providers/kubernetes/rollout_rules.h"

#include <algorithm>
#include <array>
#include <map>

#include <fmt/format.h>

namespace backout::providers::kubernetes {
namespace {

using nlohmann::json;

// Annotations the Deployment controller owns: undo keeps the Deployment's values of these and
// copies every other annotation from the target ReplicaSet.
constexpr std::array<std::string_view, 6> kAnnotationsToSkip = {
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
};

bool IsSkipped(std::string_view key) {
  return std::find(kAnnotationsToSkip.begin(), kAnnotationsToSkip.end(), key) !=
         kAnnotationsToSkip.end();
}

int64_t IntAt(const json& object, const char* pointer) {
  json::json_pointer path(pointer);
  if (!object.contains(path) || !object.at(path).is_number_integer()) return 0;
  return object.at(path).get<int64_t>();
}

std::string StringAt(const json& object, const char* pointer) {
  json::json_pointer path(pointer);
  if (!object.contains(path) || !object.at(path).is_string()) return "";
  return object.at(path).get<std::string>();
}

json Normalize(const json& value) {
  if (value.is_object()) {
    json result = json::object();
    for (const auto& [key, member] : value.items()) {
      json normalized = Normalize(member);
      if (normalized.is_null()) continue;
      if ((normalized.is_object() || normalized.is_array()) && normalized.empty()) continue;
      result[key] = std::move(normalized);
    }
    return result;
  }
  if (value.is_array()) {
    json result = json::array();
    for (const json& item : value) result.push_back(Normalize(item));
    return result;
  }
  return value;
}

json WithoutHashLabel(json template_spec) {
  if (template_spec.is_object() && template_spec.contains("metadata") &&
      template_spec["metadata"].is_object() && template_spec["metadata"].contains("labels") &&
      template_spec["metadata"]["labels"].is_object()) {
    template_spec["metadata"]["labels"].erase(std::string(kHashLabel));
    // Go leaves an empty label map out of the JSON.
    if (template_spec["metadata"]["labels"].empty()) template_spec["metadata"].erase("labels");
  }
  return template_spec;
}

bool IsControlledBy(const json& object, const std::string& uid) {
  if (!object.contains("/metadata/ownerReferences"_json_pointer)) return false;
  for (const json& owner : object.at("/metadata/ownerReferences"_json_pointer)) {
    if (owner.value("controller", false) && owner.value("uid", "") == uid) return true;
  }
  return false;
}

std::string Name(const json& object) { return StringAt(object, "/metadata/name"); }

std::string Hash(const json& replica_set) {
  return StringAt(replica_set, "/metadata/labels/pod-template-hash");
}

Target MakeTarget(const json& replica_set, int64_t revision, std::string rule) {
  return Target{replica_set, revision, std::move(rule), {}};
}

}  // namespace

std::string Annotation(const json& object, std::string_view key) {
  if (!object.contains("/metadata/annotations"_json_pointer)) return "";
  const json& annotations = object.at("/metadata/annotations"_json_pointer);
  auto it = annotations.find(key);
  if (it == annotations.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

std::optional<int64_t> Revision(const json& object) {
  std::string text = Annotation(object, kRevisionAnnotation);
  if (text.empty()) return 0;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || value > (INT64_MAX - 9) / 10) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

std::string SelectorQuery(const json& selector) {
  // Requirements sorted by key, as labels.Selector writes them.
  std::multimap<std::string, std::string> terms;
  if (selector.contains("matchLabels") && selector["matchLabels"].is_object()) {
    for (const auto& [key, value] : selector["matchLabels"].items()) {
      terms.emplace(key, key + "=" + value.get<std::string>());
    }
  }
  if (selector.contains("matchExpressions") && selector["matchExpressions"].is_array()) {
    for (const json& expression : selector["matchExpressions"]) {
      std::string key = expression.value("key", "");
      std::string op = expression.value("operator", "");
      std::vector<std::string> values;
      for (const json& value : expression.value("values", json::array())) {
        values.push_back(value.get<std::string>());
      }
      std::sort(values.begin(), values.end());
      std::string joined = fmt::format("{}", fmt::join(values, ","));
      if (op == "In") terms.emplace(key, fmt::format("{} in ({})", key, joined));
      if (op == "NotIn") terms.emplace(key, fmt::format("{} notin ({})", key, joined));
      if (op == "Exists") terms.emplace(key, key);
      if (op == "DoesNotExist") terms.emplace(key, "!" + key);
    }
  }
  std::string query;
  for (const auto& [key, term] : terms) {
    if (!query.empty()) query += ",";
    query += term;
  }
  return query;
}

std::vector<json> OwnedReplicaSets(const json& deployment, const json& items) {
  std::string uid = StringAt(deployment, "/metadata/uid");
  std::vector<json> owned;
  for (const json& item : items) {
    if (IsControlledBy(item, uid)) owned.push_back(item);
  }
  std::stable_sort(owned.begin(), owned.end(), [](const json& a, const json& b) {
    std::string time_a = StringAt(a, "/metadata/creationTimestamp");
    std::string time_b = StringAt(b, "/metadata/creationTimestamp");
    if (time_a != time_b) return time_a < time_b;
    return Name(a) < Name(b);
  });
  return owned;
}

bool EqualIgnoreHash(const json& a, const json& b) {
  return Normalize(WithoutHashLabel(a)) == Normalize(WithoutHashLabel(b));
}

std::optional<size_t> FindNewReplicaSet(const json& deployment, const std::vector<json>& owned) {
  const json& template_spec = deployment.at("/spec/template"_json_pointer);
  for (size_t i = 0; i < owned.size(); ++i) {
    if (owned[i].contains("/spec/template"_json_pointer) &&
        EqualIgnoreHash(owned[i].at("/spec/template"_json_pointer), template_spec)) {
      return i;
    }
  }
  return std::nullopt;
}

std::vector<std::string> Images(const json& template_spec) {
  std::vector<std::string> images;
  if (!template_spec.contains("/spec/containers"_json_pointer)) return images;
  for (const json& container : template_spec.at("/spec/containers"_json_pointer)) {
    images.push_back(container.value("image", ""));
  }
  return images;
}

std::string VersionOf(const json& template_spec) {
  if (!template_spec.contains("/spec/containers"_json_pointer)) return "";
  const json& containers = template_spec.at("/spec/containers"_json_pointer);
  if (containers.size() == 1) return containers[0].value("image", "");
  std::string version;
  for (const json& container : containers) {
    if (!version.empty()) version += ",";
    version += container.value("name", "") + "=" + container.value("image", "");
  }
  return version;
}

std::expected<Target, NoTarget> ChooseKubectlTarget(const json& deployment,
                                                    const std::vector<json>& owned,
                                                    int64_t to_revision) {
  std::string name = Name(deployment);
  if (to_revision < 0) {
    return std::unexpected(
        NoTarget{NoTarget::Kind::kRevisionNotFound,
                 fmt::format("unable to find specified revision {} in history", to_revision)});
  }

  // kubectl walks the old ReplicaSets, then the new one.
  std::vector<const json*> order;
  std::optional<size_t> new_index = FindNewReplicaSet(deployment, owned);
  for (size_t i = 0; i < owned.size(); ++i) {
    if (!new_index || i != *new_index) order.push_back(&owned[i]);
  }
  if (new_index) order.push_back(&owned[*new_index]);

  const json* latest = nullptr;
  const json* previous = nullptr;
  int64_t latest_revision = -1;
  int64_t previous_revision = -1;
  for (const json* rs : order) {
    std::optional<int64_t> revision = Revision(*rs);
    if (!revision) continue;
    if (to_revision > 0) {
      if (*revision == to_revision) {
        return MakeTarget(*rs, *revision, fmt::format("revision {} as requested", to_revision));
      }
      continue;
    }
    if (latest_revision < *revision) {
      previous_revision = latest_revision;
      previous = latest;
      latest_revision = *revision;
      latest = rs;
    } else if (previous_revision < *revision) {
      previous_revision = *revision;
      previous = rs;
    }
  }
  if (to_revision > 0) {
    return std::unexpected(
        NoTarget{NoTarget::Kind::kRevisionNotFound,
                 fmt::format("unable to find specified revision {} in history", to_revision)});
  }
  if (previous == nullptr) {
    return std::unexpected(
        NoTarget{NoTarget::Kind::kNoHistory,
                 fmt::format("no rollout history found for deployment \"{}\"", name)});
  }
  return MakeTarget(*previous, previous_revision,
                    fmt::format("kubectl's rule: the ReplicaSet with the second-highest revision "
                                "({}; the highest is {})",
                                previous_revision, latest_revision));
}

std::expected<Target, NoTarget> MatchNamedTarget(const json& deployment,
                                                 const std::vector<json>& owned,
                                                 std::string_view version) {
  if (version.starts_with("revision:")) {
    std::string number(version.substr(9));
    int64_t revision = 0;
    if (number.empty() || number.find_first_not_of("0123456789") != std::string::npos ||
        (revision = std::stoll(number)) <= 0) {
      return std::unexpected(
          NoTarget{NoTarget::Kind::kNoMatch, fmt::format("\"{}\" is not a valid revision: write "
                                                         "revision:N with N a positive number",
                                                         version)});
    }
    return ChooseKubectlTarget(deployment, owned, revision);
  }

  std::string by_name(version.starts_with("replicaset:") ? version.substr(11) : version);
  std::string by_hash(version.starts_with("hash:") ? version.substr(5) : version);
  for (const json& rs : owned) {
    if (Name(rs) == by_name) {
      return MakeTarget(rs, Revision(rs).value_or(0),
                        fmt::format("the named ReplicaSet {}", by_name));
    }
  }
  for (const json& rs : owned) {
    if (!Hash(rs).empty() && Hash(rs) == by_hash) {
      return MakeTarget(rs, Revision(rs).value_or(0),
                        fmt::format("the ReplicaSet with pod-template-hash {}", by_hash));
    }
  }

  // By images: the highest revision wins when several templates carry the same images.
  const json* best = nullptr;
  int64_t best_revision = -1;
  int matches = 0;
  for (const json& rs : owned) {
    if (!rs.contains("/spec/template"_json_pointer)) continue;
    if (VersionOf(rs.at("/spec/template"_json_pointer)) != version) continue;
    ++matches;
    int64_t revision = Revision(rs).value_or(-1);
    if (revision > best_revision) {
      best = &rs;
      best_revision = revision;
    }
  }
  if (best == nullptr) {
    std::vector<std::string> known;
    for (const json& rs : owned) {
      known.push_back(fmt::format("revision {} {} ({})", Revision(rs).value_or(0), Name(rs),
                                  VersionOf(rs.value("/spec/template"_json_pointer, json()))));
    }
    return std::unexpected(
        NoTarget{NoTarget::Kind::kNoMatch,
                 fmt::format("no ReplicaSet of deployment \"{}\" runs version \"{}\"; it has: {}",
                             Name(deployment), version,
                             known.empty() ? std::string("none")
                                           : fmt::format("{}", fmt::join(known, "; ")))});
  }
  Target target =
      MakeTarget(*best, best_revision, fmt::format("the ReplicaSet running version {}", version));
  if (matches > 1) {
    target.notes.push_back(fmt::format(
        "{} ReplicaSets run version {} with different templates; chose the highest revision, {} "
        "({})",
        matches, version, best_revision, Name(*best)));
  }
  return target;
}

json UndoAnnotations(const json& deployment, const json& replica_set) {
  json annotations = json::object();
  for (std::string_view key : kAnnotationsToSkip) {
    std::string value = Annotation(deployment, key);
    if (deployment.contains("/metadata/annotations"_json_pointer) &&
        deployment.at("/metadata/annotations"_json_pointer).contains(key)) {
      annotations[std::string(key)] = value;
    }
  }
  if (replica_set.contains("/metadata/annotations"_json_pointer)) {
    for (const auto& [key, value] : replica_set.at("/metadata/annotations"_json_pointer).items()) {
      if (!IsSkipped(key)) annotations[key] = value;
    }
  }
  return annotations;
}

json UndoTemplate(const json& replica_set) {
  return WithoutHashLabel(replica_set.at("/spec/template"_json_pointer));
}

json UndoPatch(const json& deployment, const json& replica_set) {
  return json::array({
      {{"op", "replace"}, {"path", "/spec/template"}, {"value", UndoTemplate(replica_set)}},
      {{"op", "replace"},
       {"path", "/metadata/annotations"},
       {"value", UndoAnnotations(deployment, replica_set)}},
  });
}

json FindCondition(const json& deployment, std::string_view type) {
  if (!deployment.contains("/status/conditions"_json_pointer)) return nullptr;
  for (const json& condition : deployment.at("/status/conditions"_json_pointer)) {
    if (condition.value("type", "") == type) return condition;
  }
  return nullptr;
}

RolloutStatus DeploymentRolloutStatus(const json& deployment, bool ignore_deadline_condition) {
  std::string name = Name(deployment);
  int64_t generation = IntAt(deployment, "/metadata/generation");
  if (generation > IntAt(deployment, "/status/observedGeneration")) {
    return {RolloutStatus::State::kWaiting, "Waiting for deployment spec update to be observed..."};
  }

  json progressing = FindCondition(deployment, "Progressing");
  if (!ignore_deadline_condition && progressing.is_object() &&
      progressing.value("reason", "") == "ProgressDeadlineExceeded") {
    return {RolloutStatus::State::kFailed,
            fmt::format("deployment \"{}\" exceeded its progress deadline", name)};
  }

  int64_t updated = IntAt(deployment, "/status/updatedReplicas");
  int64_t replicas = IntAt(deployment, "/status/replicas");
  int64_t available = IntAt(deployment, "/status/availableReplicas");
  if (deployment.contains("/spec/replicas"_json_pointer)) {
    int64_t wanted = IntAt(deployment, "/spec/replicas");
    if (updated < wanted) {
      return {RolloutStatus::State::kWaiting,
              fmt::format("Waiting for deployment \"{}\" rollout to finish: {} out of {} new "
                          "replicas have been updated...",
                          name, updated, wanted)};
    }
  }
  if (replicas > updated) {
    return {RolloutStatus::State::kWaiting,
            fmt::format("Waiting for deployment \"{}\" rollout to finish: {} old replicas are "
                        "pending termination...",
                        name, replicas - updated)};
  }
  if (available < updated) {
    return {RolloutStatus::State::kWaiting,
            fmt::format("Waiting for deployment \"{}\" rollout to finish: {} of {} updated "
                        "replicas are available...",
                        name, available, updated)};
  }
  return {RolloutStatus::State::kDone,
          fmt::format("deployment \"{}\" successfully rolled out", name)};
}

}  // namespace backout::providers::kubernetes
