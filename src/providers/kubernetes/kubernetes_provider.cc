#include "providers/kubernetes/kubernetes_provider.h"

#include <condition_variable>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "providers/kubernetes/assessment.h"

namespace backout::providers::kubernetes {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr std::string_view kPatchType = "application/json-patch+json";
constexpr std::string_view kActionKind = "kubernetes.deployment.undo";
constexpr std::string_view kConfirmHint =
    "confirm with `backout incident confirm ID --happened|--did-not-happen --reason TEXT`";

std::string StringAt(const json& object, const char* pointer) {
  json::json_pointer path(pointer);
  if (!object.contains(path) || !object.at(path).is_string()) return "";
  return object.at(path).get<std::string>();
}

int64_t IntAt(const json& object, const char* pointer) {
  json::json_pointer path(pointer);
  if (!object.contains(path) || !object.at(path).is_number_integer()) return 0;
  return object.at(path).get<int64_t>();
}

// Percent-encodes a query value (RFC 3986 unreserved characters pass).
std::string QueryEscape(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

const json& TemplateOf(const json& object) { return object.at("/spec/template"_json_pointer); }

std::vector<int64_t> RevisionHistory(const json& replica_set) {
  std::vector<int64_t> history;
  std::string text = Annotation(replica_set, kRevisionHistoryAnnotation);
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find(',', begin);
    if (end == std::string::npos) end = text.size();
    try {
      history.push_back(std::stoll(text.substr(begin, end - begin)));
    } catch (const std::exception&) {
      // An entry that is not a number is left out, as the controller writes only numbers.
    }
    begin = end + 1;
  }
  return history;
}

// A ReplicaSet as the plan, the record and the history name it: never by revision alone,
// because revisions renumber after an undo.
json ReplicaSetSummary(const json& replica_set) {
  json summary{{"replicaset", StringAt(replica_set, "/metadata/name")},
               {"uid", StringAt(replica_set, "/metadata/uid")},
               {"revision", Revision(replica_set).value_or(0)},
               {"pod_template_hash", StringAt(replica_set, "/metadata/labels/pod-template-hash")},
               {"images", Images(TemplateOf(replica_set))},
               {"version", VersionOf(TemplateOf(replica_set))}};
  std::vector<int64_t> history = RevisionHistory(replica_set);
  if (!history.empty()) summary["revision_history"] = history;
  if (std::string cause = Annotation(replica_set, kChangeCauseAnnotation); !cause.empty()) {
    summary["change_cause"] = cause;
  }
  return summary;
}

std::string Describe(const json& summary) {
  return fmt::format("revision {} (ReplicaSet {}, pod-template-hash {}, {})",
                     summary.value("revision", int64_t{0}), summary.value("replicaset", ""),
                     summary.value("pod_template_hash", ""), summary.value("version", ""));
}

core::Error FromNoTarget(const NoTarget& no_target, std::string_view service, std::string extra) {
  return core::Error{core::ErrorCode::kNotFound,
                     fmt::format("service {}: {}{}", service, no_target.message, extra)};
}

// Copies the HTTP client's record into the provider's transcript, one request and one response
// entry per attempt.
void AppendTranscript(const http::Transcript& source, Transcript& target) {
  json entries = source.ToJson();
  std::vector<http::TranscriptEntry> raw = source.Entries();
  for (size_t i = 0; i < raw.size() && i < entries.size(); ++i) {
    const json& entry = entries[i];
    json request{{"method", entry.value("method", "")},
                 {"url", entry.value("url", "")},
                 {"attempt", entry.value("attempt", 1)},
                 {"headers", entry.value("request_headers", json::array())}};
    for (const char* body : {"request_body", "request_body_base64"}) {
      if (entry.contains(body)) request[body] = entry[body];
    }
    target.Add(raw[i].time, TranscriptKind::kRequest,
               fmt::format("{} {}", request["method"].get<std::string>(),
                           request["url"].get<std::string>()),
               request);
    json response{{"status", entry.value("status", 0)},
                  {"headers", entry.value("response_headers", json::array())},
                  {"timing_ms", entry.value("timing_ms", json::object())}};
    for (const char* body : {"response_body", "response_body_base64", "error"}) {
      if (entry.contains(body)) response[body] = entry[body];
    }
    std::string summary = raw[i].status == 0 ? fmt::format("no response: {}", raw[i].error)
                                             : fmt::format("HTTP {}", raw[i].status);
    target.Add(raw[i].time + raw[i].timing.total, TranscriptKind::kResponse, summary, response);
  }
}

}  // namespace

// ---- Construction ---------------------------------------------------------------------------

core::Result<std::unique_ptr<Provider>> KubernetesProvider::Create(std::string_view service,
                                                                   const json& settings,
                                                                   const SecretValues& secrets,
                                                                   core::Clock& clock) {
  if (service.empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "kubernetes provider: the service name is empty");
  }
  auto parsed = ParseKubernetesSettings(service, settings);
  if (!parsed) return std::unexpected(parsed.error());
  auto access = LoadKubeconfig(parsed->kubeconfig, parsed->context);
  if (!access)
    return std::unexpected(access.error().WithContext(fmt::format("service {}", service)));
  std::string ns = !parsed->ns.empty() ? parsed->ns : !access->ns.empty() ? access->ns : "default";
  auto client = ApiClient::Create(*access, clock, parsed->request_timeout);
  if (!client)
    return std::unexpected(client.error().WithContext(fmt::format("service {}", service)));
  return std::unique_ptr<Provider>(new KubernetesProvider(
      std::string(service), std::move(*parsed), std::move(ns), std::move(*client), clock));
}

KubernetesProvider::KubernetesProvider(std::string service, KubernetesSettings settings,
                                       std::string ns, std::unique_ptr<ApiClient> client,
                                       core::Clock& clock)
    : service_(std::move(service)),
      settings_(std::move(settings)),
      ns_(std::move(ns)),
      client_(std::move(client)),
      clock_(clock) {}

ProviderCapabilities KubernetesProvider::Capabilities() const {
  return ProviderCapabilities{.live_state = true, .history = true, .readiness = true};
}

std::string KubernetesProvider::DeploymentPath() const {
  return fmt::format("/apis/apps/v1/namespaces/{}/deployments/{}", ns_, settings_.deployment);
}

std::string KubernetesProvider::ReadImpersonation() const {
  return settings_.impersonate == "executor" ? "" : settings_.impersonate;
}

// ---- Reading --------------------------------------------------------------------------------

core::Result<KubernetesProvider::Snapshot> KubernetesProvider::ReadSnapshot(
    const CallContext& call) const {
  auto deployment = client_->Get(DeploymentPath(), call);
  if (!deployment) {
    return std::unexpected(deployment.error().WithContext(
        fmt::format("service {}: reading deployment {}/{}", service_, ns_, settings_.deployment)));
  }
  if (deployment->status == 404) {
    return core::MakeError(core::ErrorCode::kNotFound,
                           "service {}: deployment \"{}\" not found in namespace {}; check the "
                           "provider's deployment and namespace",
                           service_, settings_.deployment, ns_);
  }
  if (!deployment->ok() || !deployment->body.is_object() ||
      !deployment->body.contains("/spec/template"_json_pointer)) {
    return core::MakeError(deployment->status == 401   ? core::ErrorCode::kUnauthenticated
                           : deployment->status == 403 ? core::ErrorCode::kPermissionDenied
                                                       : core::ErrorCode::kUnavailable,
                           "service {}: reading deployment {}/{} failed: {}", service_, ns_,
                           settings_.deployment, deployment->ErrorMessage());
  }

  std::string selector =
      SelectorQuery(deployment->body.value("/spec/selector"_json_pointer, json::object()));
  auto list = client_->Get(fmt::format("/apis/apps/v1/namespaces/{}/replicasets?labelSelector={}",
                                       ns_, QueryEscape(selector)),
                           call);
  if (!list) {
    return std::unexpected(list.error().WithContext(fmt::format(
        "service {}: listing the ReplicaSets of {}/{}", service_, ns_, settings_.deployment)));
  }
  if (!list->ok() || !list->body.contains("items")) {
    return core::MakeError(core::ErrorCode::kUnavailable,
                           "service {}: listing the ReplicaSets of {}/{} failed: {}", service_, ns_,
                           settings_.deployment, list->ErrorMessage());
  }
  std::vector<json> owned = OwnedReplicaSets(deployment->body, list->body["items"]);
  return Snapshot{std::move(deployment->body), std::move(owned)};
}

core::Result<ClusterView> KubernetesProvider::ReadView() const {
  auto snapshot = ReadSnapshot(CallContext{ReadImpersonation(), nullptr});
  if (!snapshot) return std::unexpected(snapshot.error());
  std::string selector =
      SelectorQuery(snapshot->deployment.value("/spec/selector"_json_pointer, json::object()));
  auto pods = client_->Get(
      fmt::format("/api/v1/namespaces/{}/pods?labelSelector={}", ns_, QueryEscape(selector)),
      CallContext{ReadImpersonation(), nullptr});
  if (!pods) return std::unexpected(pods.error());
  if (!pods->ok() || !pods->body.contains("items")) {
    return core::MakeError(core::ErrorCode::kUnavailable,
                           "service {}: listing the pods of {}/{} failed: {}", service_, ns_,
                           settings_.deployment, pods->ErrorMessage());
  }
  ClusterView view;
  view.deployment = std::move(snapshot->deployment);
  view.replica_sets = std::move(snapshot->owned);
  view.pods.assign(pods->body["items"].begin(), pods->body["items"].end());
  return view;
}

core::Result<LiveState> KubernetesProvider::ReadLiveState() const {
  auto snapshot = ReadSnapshot(CallContext{ReadImpersonation(), nullptr});
  if (!snapshot) return std::unexpected(snapshot.error());
  const json& d = snapshot->deployment;

  LiveState state;
  state.version = VersionOf(TemplateOf(d));
  state.observed_at = clock_.Now();
  state.details = json{{"namespace", ns_},
                       {"deployment", settings_.deployment},
                       {"images", Images(TemplateOf(d))},
                       {"revision", Annotation(d, kRevisionAnnotation)},
                       {"generation", IntAt(d, "/metadata/generation")},
                       {"observed_generation", IntAt(d, "/status/observedGeneration")},
                       {"paused", d.value("/spec/paused"_json_pointer, false)},
                       {"replicas", IntAt(d, "/spec/replicas")},
                       {"updated_replicas", IntAt(d, "/status/updatedReplicas")},
                       {"available_replicas", IntAt(d, "/status/availableReplicas")}};
  if (auto index = FindNewReplicaSet(d, snapshot->owned)) {
    state.details["replicaset"] = ReplicaSetSummary(snapshot->owned[*index]);
  }
  return state;
}

core::Result<std::vector<HistoryEntry>> KubernetesProvider::History(core::Time since) const {
  auto view = ReadView();
  if (!view) return std::unexpected(view.error());

  // Every revision a ReplicaSet held: the first is its creation, the others rollbacks to it.
  struct Event {
    int64_t revision;
    const json* replica_set;
    bool created;
    std::optional<core::Time> exact_time;
  };
  std::vector<Event> events;
  for (const json& rs : view->replica_sets) {
    std::vector<int64_t> revisions = RevisionHistory(rs);
    if (auto current = Revision(rs); current && *current > 0) revisions.push_back(*current);
    std::sort(revisions.begin(), revisions.end());
    auto created = core::ParseTime(StringAt(rs, "/metadata/creationTimestamp"));
    for (size_t i = 0; i < revisions.size(); ++i) {
      Event event{revisions[i], &rs, i == 0, std::nullopt};
      if (i == 0 && created) event.exact_time = *created;
      events.push_back(event);
    }
  }
  std::sort(events.begin(), events.end(),
            [](const Event& a, const Event& b) { return a.revision < b.revision; });

  // A rollback happened after every revision below it and before every one above it. The
  // latest one is also no older than the oldest pod its ReplicaSet runs now.
  std::vector<HistoryEntry> entries;
  core::Time now = clock_.Now();
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& event = events[i];
    core::Time lower{};
    for (size_t j = 0; j < i; ++j) {
      if (events[j].exact_time) lower = std::max(lower, *events[j].exact_time);
    }
    core::Time upper = now;
    for (size_t j = i + 1; j < events.size(); ++j) {
      if (events[j].exact_time) {
        upper = std::min(upper, *events[j].exact_time);
        break;
      }
    }
    core::Time time = event.exact_time.value_or(lower);
    if (!event.exact_time && i + 1 == events.size()) {
      std::string uid = StringAt(*event.replica_set, "/metadata/uid");
      std::optional<core::Time> oldest_pod;
      for (const json& pod : view->pods) {
        bool owned = false;
        for (const json& owner :
             pod.value("/metadata/ownerReferences"_json_pointer, json::array())) {
          if (owner.value("uid", "") == uid) owned = true;
        }
        auto created = core::ParseTime(StringAt(pod, "/metadata/creationTimestamp"));
        if (owned && created && (!oldest_pod || *created < *oldest_pod)) oldest_pod = *created;
      }
      if (oldest_pod && *oldest_pod > time) time = *oldest_pod;
    }
    if ((event.exact_time ? time : upper) < since) continue;

    HistoryEntry entry;
    entry.version = VersionOf(TemplateOf(*event.replica_set));
    entry.time = time;
    entry.kind = event.created ? HistoryKind::kDeploy : HistoryKind::kRollback;
    entry.details = ReplicaSetSummary(*event.replica_set);
    entry.details["revision_at_event"] = event.revision;
    entry.details["time_estimated"] = !event.exact_time.has_value();
    entry.details["namespace"] = ns_;
    entry.details["deployment"] = settings_.deployment;
    entries.push_back(std::move(entry));
  }
  return entries;
}

// ---- Assessment ------------------------------------------------------------------------------

std::string KubernetesProvider::NoHistoryExplanation(const Snapshot& snapshot) const {
  const json& d = snapshot.deployment;
  int64_t current = Revision(d).value_or(0);
  std::string reason;
  if (d.contains("/spec/revisionHistoryLimit"_json_pointer) &&
      IntAt(d, "/spec/revisionHistoryLimit") == 0) {
    reason =
        "revisionHistoryLimit is 0, so the controller deletes every old ReplicaSet and no "
        "earlier revision is retained";
  } else if (current > 1) {
    reason = fmt::format(
        "the Deployment is at revision {} but no earlier ReplicaSet is retained: "
        "they were pruned by revisionHistoryLimit ({}) or deleted",
        current, IntAt(d, "/spec/revisionHistoryLimit"));
  } else {
    reason = "the Deployment has had only one revision, so there is nothing earlier to go back to";
  }
  return fmt::format(
      "; {}. Roll forward instead: deploy a known-good image, or revert the change "
      "in its source (Git) and redeploy",
      reason);
}

core::Result<std::vector<Precondition>> KubernetesProvider::Preconditions() const {
  std::vector<Precondition> checks;
  auto snapshot = ReadSnapshot(CallContext{ReadImpersonation(), nullptr});
  if (!snapshot) {
    if (snapshot.error().code != core::ErrorCode::kNotFound) {
      return std::unexpected(snapshot.error());
    }
    checks.push_back({"deployment exists", false, snapshot.error().message});
    return checks;
  }
  const json& d = snapshot->deployment;
  checks.push_back({"deployment exists", true,
                    fmt::format("deployment {}/{} (workload kind Deployment; StatefulSets and "
                                "DaemonSets are not supported yet)",
                                ns_, settings_.deployment)});

  bool paused = d.value("/spec/paused"_json_pointer, false);
  checks.push_back(
      {"deployment not paused", !paused,
       paused ? fmt::format("deployment {}/{} is paused, and kubectl refuses to roll back a paused "
                            "deployment; resume it first with `{}`, then plan again",
                            ns_, settings_.deployment, ResumeCommand(ns_, settings_.deployment))
              : "spec.paused is false"});

  auto target = ChooseKubectlTarget(d, snapshot->owned, 0);
  if (target) {
    checks.push_back({"rollback target retained", true,
                      fmt::format("kubectl's rule would go back to {}; {} ReplicaSets are "
                                  "retained (revisionHistoryLimit {})",
                                  Describe(ReplicaSetSummary(target->replica_set)),
                                  snapshot->owned.size(), IntAt(d, "/spec/revisionHistoryLimit"))});
  } else {
    checks.push_back({"rollback target retained", false,
                      target.error().message + NoHistoryExplanation(*snapshot)});
  }

  if (auto owner = DetectGitOpsOwner(d)) {
    bool allowed = settings_.gitops == GitOpsPolicy::kAllow;
    checks.push_back(
        {"not managed by GitOps", allowed,
         allowed ? fmt::format("Warning: {} manages this Deployment ({}); its self-heal may revert "
                               "the undo, so Backout checks again {} ms after the rollback and "
                               "reports reverted_by_controller if it did",
                               owner->tool, owner->evidence, settings_.gitops_grace.count())
                 : fmt::format("{} manages this Deployment ({}), and its self-heal would revert a "
                               "kubectl-level undo; revert the change in Git instead, or set "
                               "`gitops: allow` in the provider settings to roll back here anyway",
                               owner->tool, owner->evidence)});
  }

  // Warnings: what an undo leaves as it is.
  const json& template_spec = target ? TemplateOf(target->replica_set) : TemplateOf(d);
  ConfigReferences config = ReferencedConfig(template_spec);
  std::string replicas_note = fmt::format("the replica count (now {})", IntAt(d, "/spec/replicas"));
  std::string config_note;
  if (!config.config_maps.empty()) {
    config_note += fmt::format(", the ConfigMaps {}", fmt::join(config.config_maps, ", "));
  }
  if (!config.secrets.empty()) {
    config_note += fmt::format(", the Secrets {}", fmt::join(config.secrets, ", "));
  }
  checks.push_back(
      {"undo scope", true,
       fmt::format("Warning: an undo restores only the pod template. It does not "
                   "revert {}{}, or any other object the change touched; their "
                   "current contents stay",
                   replicas_note, config_note.empty() ? ", ConfigMaps or Secrets" : config_note)});

  bool last_applied = !Annotation(d, kLastAppliedAnnotation).empty();
  std::vector<std::string> apply_managers = ApplyManagers(d);
  if (last_applied || !apply_managers.empty()) {
    std::string management =
        last_applied ? "kubectl.kubernetes.io/last-applied-configuration"
                     : fmt::format("server-side apply by {}", fmt::join(apply_managers, ", "));
    checks.push_back({"source of truth reverted", true,
                      fmt::format("Warning: the Deployment is managed with kubectl apply ({}), "
                                  "which an undo leaves at the current manifest; the next apply "
                                  "of a fixed manifest may keep fields the fix removes. Revert the "
                                  "manifest in its source as part of this rollback",
                                  management)});
  }

  if (target) {
    auto current = FindNewReplicaSet(d, snapshot->owned);
    if (current && !RevisionHistory(snapshot->owned[*current]).empty()) {
      checks.push_back(
          {"repeated undo", true,
           fmt::format("Warning: the live revision came from an earlier rollback, so kubectl's "
                       "rule goes back to the revision that rollback replaced ({}), not further "
                       "back; name a version to go elsewhere",
                       Describe(ReplicaSetSummary(target->replica_set)))});
    }
  }
  return checks;
}

// ---- Planning --------------------------------------------------------------------------------

json KubernetesProvider::BuildAction(const Snapshot& snapshot, const json& target) const {
  const json& d = snapshot.deployment;
  bool noop = EqualIgnoreHash(TemplateOf(target), TemplateOf(d));
  json from = nullptr;
  if (auto index = FindNewReplicaSet(d, snapshot.owned)) {
    from = ReplicaSetSummary(snapshot.owned[*index]);
  }
  return json{{"kind", kActionKind},
              {"namespace", ns_},
              {"deployment", settings_.deployment},
              {"deployment_uid", StringAt(d, "/metadata/uid")},
              {"from_version", VersionOf(TemplateOf(d))},
              {"from", from},
              {"target", ReplicaSetSummary(target)},
              {"noop", noop},
              {"patch_type", kPatchType},
              {"patch", noop ? json(nullptr) : UndoPatch(d, target)}};
}

core::Result<Plan> KubernetesProvider::MakePlan(std::string_view target_version) const {
  auto snapshot = ReadSnapshot(CallContext{ReadImpersonation(), nullptr});
  if (!snapshot) return std::unexpected(snapshot.error());

  auto target = target_version.empty()
                    ? ChooseKubectlTarget(snapshot->deployment, snapshot->owned, 0)
                    : MatchNamedTarget(snapshot->deployment, snapshot->owned, target_version);
  if (!target) {
    std::string extra =
        target.error().kind == NoTarget::Kind::kNoHistory ? NoHistoryExplanation(*snapshot) : "";
    return std::unexpected(FromNoTarget(target.error(), service_, extra));
  }

  Plan plan;
  plan.provider_kind = "kubernetes";
  plan.service = service_;
  plan.action = BuildAction(*snapshot, target->replica_set);
  plan.target_version = plan.action["target"]["version"];
  plan.noop = plan.action["noop"];
  plan.digest = PlanDigest(plan.action);
  std::string target_text = Describe(plan.action["target"]);
  if (plan.noop) {
    plan.summary = fmt::format(
        "skipped rollback (current template already matches revision {}): "
        "deployment {}/{} already runs {}",
        target->revision, ns_, settings_.deployment, target_text);
  } else {
    plan.summary =
        fmt::format("roll deployment {}/{} back to {}, chosen by {}; it runs {} now", ns_,
                    settings_.deployment, target_text, target->rule,
                    plan.action["from"].is_null() ? plan.action["from_version"].get<std::string>()
                                                  : Describe(plan.action["from"]));
  }
  for (const std::string& note : target->notes) plan.summary += "; " + note;
  if (snapshot->deployment.value("/spec/paused"_json_pointer, false)) {
    plan.summary += fmt::format(
        "; the deployment is paused, so the rollback will be refused until "
        "`{}`",
        ResumeCommand(ns_, settings_.deployment));
  }
  return plan;
}

core::Result<void> KubernetesProvider::ValidatePlan(const Plan& plan) const {
  if (auto origin = CheckPlanOrigin(plan, "kubernetes", service_); !origin) {
    return std::unexpected(origin.error());
  }
  if (plan.action.value("kind", "") != kActionKind || plan.action.value("namespace", "") != ns_ ||
      plan.action.value("deployment", "") != settings_.deployment ||
      !plan.action.contains("target") || !plan.action["target"].is_object()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: the plan is not a rollback of deployment {}/{}", service_,
                           ns_, settings_.deployment);
  }
  return {};
}

// ---- Execution -------------------------------------------------------------------------------

core::Result<ExecutionResult> KubernetesProvider::Execute(const Plan& plan,
                                                          std::string_view idempotency_key,
                                                          const ExecutionContext& context) const {
  if (auto valid = ValidatePlan(plan); !valid) return std::unexpected(valid.error());
  if (idempotency_key.empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: the idempotency key is empty; pass the job's key",
                           service_);
  }

  ExecutionResult result;
  result.target_version = plan.target_version;
  result.from_version = plan.action.value("from_version", "");
  result.started_at = clock_.Now();
  const json& planned_target = plan.action["target"];
  http::Transcript transcript([this] { return clock_.Now(); }, client_->Redaction());
  auto finish = [&](RollbackOutcome outcome, std::string message) {
    AppendTranscript(transcript, result.transcript);
    result.outcome = outcome;
    result.message = std::move(message);
    result.finished_at = clock_.Now();
    spdlog::info(
        "provider.kubernetes: service={} incident={} deployment={}/{} outcome={} "
        "message=\"{}\"",
        service_, context.incident_id, ns_, settings_.deployment,
        core::RollbackOutcomeName(outcome), result.message);
    return result;
  };
  std::string impersonate =
      settings_.impersonate == "executor" ? context.executor : settings_.impersonate;
  CallContext call{impersonate, &transcript};

  // Step 1: read the live state and check it still gives this plan, in kubectl's order of
  // refusals: no target, paused, already matching.
  auto snapshot = ReadSnapshot(call);
  if (!snapshot) {
    return finish(snapshot.error().code == core::ErrorCode::kNotFound
                      ? RollbackOutcome::kPreconditionFailed
                      : RollbackOutcome::kFailed,
                  fmt::format("nothing was sent: {}", snapshot.error().message));
  }
  const json& d = snapshot->deployment;
  result.live_version = VersionOf(TemplateOf(d));
  const json* target_rs = nullptr;
  for (const json& rs : snapshot->owned) {
    if (StringAt(rs, "/metadata/name") == planned_target.value("replicaset", "") &&
        StringAt(rs, "/metadata/labels/pod-template-hash") ==
            planned_target.value("pod_template_hash", "")) {
      target_rs = &rs;
    }
  }
  if (target_rs == nullptr) {
    return finish(
        RollbackOutcome::kNoRollbackTarget,
        fmt::format("nothing was sent: the target ReplicaSet {} ({}) no longer exists; "
                    "revisionHistoryLimit pruned it or someone deleted it. Roll forward "
                    "with a known-good image or revert the change in its source",
                    planned_target.value("replicaset", ""), planned_target.value("version", "")));
  }
  if (d.value("/spec/paused"_json_pointer, false)) {
    return finish(RollbackOutcome::kPreconditionFailed,
                  fmt::format("nothing was sent: you cannot rollback a paused deployment; resume "
                              "it first with `{}` and plan again",
                              ResumeCommand(ns_, settings_.deployment)));
  }
  if (EqualIgnoreHash(TemplateOf(*target_rs), TemplateOf(d))) {
    return finish(RollbackOutcome::kSkippedNoop,
                  fmt::format("skipped rollback (current template already matches revision {}); "
                              "nothing was sent",
                              Revision(*target_rs).value_or(0)));
  }
  if (auto owner = DetectGitOpsOwner(d); owner && settings_.gitops == GitOpsPolicy::kRefuse) {
    return finish(RollbackOutcome::kPreconditionFailed,
                  fmt::format("nothing was sent: {} manages this Deployment ({}) and would revert "
                              "the undo; revert the change in Git instead, or set `gitops: allow`",
                              owner->tool, owner->evidence));
  }
  json action = BuildAction(*snapshot, *target_rs);
  if (action != plan.action) {
    return finish(
        RollbackOutcome::kPreconditionFailed,
        fmt::format("nothing was sent: the deployment changed since the plan was made "
                    "(it now runs {}, annotation revision {}); plan again and decide on "
                    "the new plan",
                    action.value("from_version", ""), Annotation(d, kRevisionAnnotation)));
  }

  // Step 2: let the job commit the start, then send the patch once.
  StartedAction started{clock_.Now(), std::nullopt,
                        json{{"namespace", ns_},
                             {"deployment", settings_.deployment},
                             {"deployment_uid", StringAt(d, "/metadata/uid")},
                             {"target", planned_target},
                             {"patch_digest", PlanDigest(plan.action["patch"])}}};
  if (context.on_started) {
    if (auto recorded = context.on_started(started); !recorded) {
      return finish(RollbackOutcome::kFailed,
                    fmt::format("nothing was sent: the rollback's start could not be recorded: {}",
                                recorded.error().message));
    }
  }
  result.started = started;
  result.started_at = started.started_at;
  auto response = client_->Patch(DeploymentPath(), kPatchType, plan.action["patch"].dump(), call);

  // Step 3: judge by the API's response, or by the live state when no response came.
  json expected_template = plan.action["patch"][0]["value"];
  if (!response) {
    auto after = ReadSnapshot(call);
    if (!after) {
      return finish(RollbackOutcome::kInterrupted,
                    fmt::format("the patch got no response ({}) and the deployment could not be "
                                "read back ({}); {}",
                                response.error().message, after.error().message, kConfirmHint));
    }
    result.live_version = VersionOf(TemplateOf(after->deployment));
    if (EqualIgnoreHash(TemplateOf(after->deployment), expected_template)) {
      return finish(RollbackOutcome::kRolledBack,
                    fmt::format("rolled back: the patch got no response ({}), but the deployment "
                                "now runs {}",
                                response.error().message, Describe(planned_target)));
    }
    if (EqualIgnoreHash(TemplateOf(after->deployment), TemplateOf(d))) {
      return finish(RollbackOutcome::kFailed,
                    fmt::format("the patch got no response ({}) and the deployment still runs "
                                "the template from before; roll back again",
                                response.error().message));
    }
    return finish(RollbackOutcome::kInterrupted,
                  fmt::format("the patch got no response ({}) and the deployment now runs {}, "
                              "neither the template before nor the target; {}",
                              response.error().message, result.live_version, kConfirmHint));
  }
  if (!response->ok()) {
    return finish(
        RollbackOutcome::kFailed,
        fmt::format("failed restoring revision {}: HTTP {}: {}", Revision(*target_rs).value_or(0),
                    response->status, response->ErrorMessage()));
  }
  const json& patched = response->body;
  result.live_version = VersionOf(TemplateOf(patched));
  result.details =
      json{{"namespace", ns_},
           {"deployment", settings_.deployment},
           {"http_status", response->status},
           {"generation", IntAt(patched, "/metadata/generation")},
           {"resource_version", StringAt(patched, "/metadata/resourceVersion")},
           {"target", planned_target},
           {"from", plan.action["from"]},
           {"expected_template", expected_template},
           {"kubectl_output", fmt::format("deployment.apps/{} rolled back", settings_.deployment)}};
  if (!EqualIgnoreHash(TemplateOf(patched), expected_template)) {
    return finish(RollbackOutcome::kFailed,
                  fmt::format("the API server accepted the patch but the deployment runs {}, not "
                              "the target {}",
                              result.live_version, plan.target_version));
  }

  // Step 4: a GitOps controller may put its own template back within its self-heal interval.
  if (DetectGitOpsOwner(d) && settings_.gitops == GitOpsPolicy::kAllow) {
    std::mutex mutex;
    std::condition_variable_any wake;
    std::unique_lock lock(mutex);
    wake.wait_for(lock, context.stop, settings_.gitops_grace, [] { return false; });
    auto after = ReadSnapshot(call);
    if (after && !EqualIgnoreHash(TemplateOf(after->deployment), expected_template)) {
      result.live_version = VersionOf(TemplateOf(after->deployment));
      return finish(RollbackOutcome::kRevertedByController,
                    fmt::format("rolled back to {}, but within {} ms the deployment ran {} again: "
                                "its GitOps controller reverted the undo; revert the change in "
                                "Git or suspend the controller's automation",
                                Describe(planned_target), settings_.gitops_grace.count(),
                                result.live_version));
    }
  }
  return finish(RollbackOutcome::kRolledBack,
                fmt::format("rolled back deployment {}/{} to {}", ns_, settings_.deployment,
                            Describe(planned_target)));
}

core::Result<ExecutionResult> KubernetesProvider::Resume(const ResumeRequest& request,
                                                         const ExecutionContext& context) const {
  const Plan& plan = request.plan;
  if (auto valid = ValidatePlan(plan); !valid) return std::unexpected(valid.error());

  ExecutionResult result;
  result.target_version = plan.target_version;
  result.from_version = plan.action.value("from_version", "");
  result.started = request.started;
  result.started_at = request.started ? request.started->started_at : clock_.Now();
  auto finish = [&](RollbackOutcome outcome, std::string message) {
    result.outcome = outcome;
    result.message = std::move(message);
    result.finished_at = clock_.Now();
    spdlog::info("provider.kubernetes: service={} incident={} resumed outcome={} message=\"{}\"",
                 service_, context.incident_id, core::RollbackOutcomeName(outcome), result.message);
    return result;
  };

  if (plan.noop) {
    return finish(RollbackOutcome::kSkippedNoop,
                  "the target was already live when planned; nothing was sent");
  }
  if (!request.started) {
    return finish(RollbackOutcome::kFailed,
                  "the patch was never sent: Backout stopped before the rollback's start was "
                  "recorded, and the patch is sent only after that; roll back again");
  }

  // The patch may or may not have landed: only the live template can tell.
  auto snapshot = ReadSnapshot(CallContext{ReadImpersonation(), nullptr});
  if (!snapshot) {
    return finish(RollbackOutcome::kInterrupted,
                  fmt::format("the deployment could not be read ({}); {}", snapshot.error().message,
                              kConfirmHint));
  }
  const json& live = TemplateOf(snapshot->deployment);
  result.live_version = VersionOf(live);
  if (EqualIgnoreHash(live, plan.action["patch"][0]["value"])) {
    return finish(RollbackOutcome::kRolledBack,
                  fmt::format("the patch had landed before the restart: the deployment runs {}",
                              Describe(plan.action["target"])));
  }
  const json& from = plan.action["from"];
  for (const json& rs : snapshot->owned) {
    if (from.is_object() && StringAt(rs, "/metadata/name") == from.value("replicaset", "") &&
        EqualIgnoreHash(TemplateOf(rs), live)) {
      return finish(RollbackOutcome::kFailed,
                    fmt::format("the patch did not land: the deployment still runs {}; roll back "
                                "again",
                                Describe(from)));
    }
  }
  return finish(RollbackOutcome::kInterrupted,
                fmt::format("the deployment runs {}, neither the template before the rollback nor "
                            "its target; {}",
                            result.live_version, kConfirmHint));
}

// ---- Readiness and read-back -----------------------------------------------------------------

core::Result<Readiness> KubernetesProvider::CheckReadiness() const {
  auto view = ReadView();
  if (!view) return std::unexpected(view.error());
  ReadinessRules rules{settings_.soak, settings_.restart_limit};
  ReadinessReport report = EvaluateOnce(*view, rules, clock_.Now());
  return Readiness{report.verdict == Verdict::kReady, report.message,
                   report.verdict == Verdict::kFailed};
}

core::Result<ReadinessReport> KubernetesProvider::WaitForRollout(const RolloutWait& wait) const {
  ReadinessTracker tracker(ReadinessRules{settings_.soak, settings_.restart_limit}, wait.since,
                           wait.expected_template);
  auto deadline = std::chrono::steady_clock::now() + settings_.readiness_timeout;
  std::string last_message;
  std::string last_error;
  std::mutex mutex;
  std::condition_variable_any wake;

  while (true) {
    auto view = ReadView();
    if (view) {
      ReadinessReport report = tracker.Observe(*view, clock_.Now());
      if (report.message != last_message) {
        last_message = report.message;
        spdlog::info("provider.kubernetes: service={} deployment={}/{} readiness: {}", service_,
                     ns_, settings_.deployment, report.message);
        if (wait.on_progress) wait.on_progress(report);
      }
      if (report.verdict != Verdict::kWaiting) return report;
    } else {
      last_error = view.error().message;
      spdlog::warn("provider.kubernetes: service={} deployment={}/{} readiness poll failed: {}",
                   service_, ns_, settings_.deployment, last_error);
    }

    if (std::chrono::steady_clock::now() >= deadline) {
      ReadinessReport report;
      report.verdict = Verdict::kFailed;
      report.reason = "Timeout";
      report.kubectl_status = last_message;
      report.message = fmt::format(
          "timed out after {} ms (Backout's readiness_timeout; the Deployment's own "
          "progressDeadlineSeconds had not fired): {}",
          settings_.readiness_timeout.count(),
          last_message.empty() ? "last poll failed: " + last_error : last_message);
      return report;
    }
    std::unique_lock lock(mutex);
    wake.wait_for(lock, wait.stop, settings_.poll_interval, [] { return false; });
    if (wait.stop.stop_requested()) {
      ReadinessReport report;
      report.verdict = Verdict::kFailed;
      report.reason = "Stopped";
      report.message = "the readiness wait was stopped on request: " + last_message;
      return report;
    }
  }
}

core::Result<ReadinessReport> KubernetesProvider::WaitForRollout(
    const ExecutionResult& execution, std::function<void(const ReadinessReport&)> on_progress,
    std::stop_token stop) const {
  RolloutWait wait;
  wait.since = execution.started ? execution.started->started_at : execution.started_at;
  if (execution.details.contains("expected_template")) {
    wait.expected_template = execution.details["expected_template"];
  }
  wait.on_progress = std::move(on_progress);
  wait.stop = stop;
  return WaitForRollout(wait);
}

core::Result<ToolRecord> KubernetesProvider::ReadBack(const ExecutionResult& execution) const {
  auto snapshot = ReadSnapshot(CallContext{ReadImpersonation(), nullptr});
  if (!snapshot)
    return std::unexpected(snapshot.error().WithContext("cannot read back the rollback"));
  const json& d = snapshot->deployment;

  ToolRecord record;
  record.time = clock_.Now();
  record.version = VersionOf(TemplateOf(d));
  record.details = json{{"source", "kubernetes api"},
                        {"namespace", ns_},
                        {"deployment", settings_.deployment},
                        {"deployment_revision", Annotation(d, kRevisionAnnotation)},
                        {"generation", IntAt(d, "/metadata/generation")},
                        {"observed_generation", IntAt(d, "/status/observedGeneration")}};
  if (auto index = FindNewReplicaSet(d, snapshot->owned)) {
    const json& rs = snapshot->owned[*index];
    json summary = ReplicaSetSummary(rs);
    summary["replicas"] = IntAt(rs, "/spec/replicas");
    summary["ready_replicas"] = IntAt(rs, "/status/readyReplicas");
    record.details["replicaset"] = summary;
    // The row `kubectl rollout history` shows for it.
    std::string cause = Annotation(rs, kChangeCauseAnnotation);
    record.details["history_row"] = json{{"revision", Revision(rs).value_or(0)},
                                         {"change_cause", cause.empty() ? "<none>" : cause}};
    const json& target = execution.details.value("target", json::object());
    record.details["matches_target"] =
        target.is_object() &&
        target.value("pod_template_hash", "") == summary.value("pod_template_hash", "") &&
        record.version == execution.target_version;
  } else {
    record.details["matches_target"] = false;
  }
  return record;
}

}  // namespace backout::providers::kubernetes
