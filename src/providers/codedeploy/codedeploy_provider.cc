#include "providers/codedeploy/codedeploy_provider.h"

#include <algorithm>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

namespace backout::providers::codedeploy {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

// BatchGetDeployments and BatchGetDeploymentTargets take at most this many ids.
constexpr size_t kBatchLimit = 25;
// Pages of ListDeployments read while searching for a deployment, at most 100 ids each.
constexpr int kMaxSearchPages = 20;
// How far back a search for an earlier attempt of the same rollback looks.
constexpr auto kMarkerSearchWindow = std::chrono::hours(24);
// Attempts at CreateDeployment whose response was lost, each followed by a search.
constexpr int kMaxUncertainCreates = 3;
// Polls after a deployment stopped, waiting for CodeDeploy to record its own rollback.
constexpr int kRollbackInfoPolls = 5;

constexpr std::string_view kConfirmHint =
    "confirm with `backout incident confirm ID --happened|--did-not-happen --reason TEXT`";

std::string ActionText(const json& action, std::string_view field) {
  auto it = action.find(field);
  return it != action.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string DescribeInstances(const std::vector<InstanceResult>& instances) {
  std::vector<std::string> parts;
  for (const InstanceResult& instance : instances) {
    if (instance.failed_event.empty()) {
      parts.push_back(fmt::format("{} ({})", instance.instance_id, instance.status));
    } else {
      parts.push_back(fmt::format("{} ({} failed: {})", instance.instance_id, instance.failed_event,
                                  instance.message));
    }
  }
  return fmt::format("{}", fmt::join(parts, "; "));
}

json InstancesJson(const std::vector<InstanceResult>& instances) {
  json out = json::array();
  for (const InstanceResult& instance : instances) {
    out.push_back({{"instance_id", instance.instance_id},
                   {"status", instance.status},
                   {"failed_event", instance.failed_event},
                   {"message", instance.message}});
  }
  return out;
}

std::string FormatLimit(milliseconds limit) {
  if (limit.count() % 60'000 == 0) return fmt::format("{}m", limit.count() / 60'000);
  if (limit.count() % 1000 == 0) return fmt::format("{}s", limit.count() / 1000);
  return fmt::format("{}ms", limit.count());
}

}  // namespace

// ---- Creation ---------------------------------------------------------------------------------

core::Result<std::unique_ptr<Provider>> CodeDeployProvider::Create(std::string_view service,
                                                                   const json& settings,
                                                                   const SecretValues& secrets,
                                                                   core::Clock& clock) {
  return CreateWithEnvironment(service, settings, secrets, clock, ProcessEnvironment);
}

core::Result<std::unique_ptr<Provider>> CodeDeployProvider::CreateWithEnvironment(
    std::string_view service, const json& settings, const SecretValues& secrets, core::Clock& clock,
    const EnvironmentLookup& environment) {
  if (service.empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "codedeploy provider: the service name is empty");
  }
  auto parsed = ParseCodeDeploySettings(service, settings, secrets, environment);
  if (!parsed) return std::unexpected(parsed.error());

  ApiClientOptions options{parsed->endpoint, parsed->region, parsed->credentials,
                           parsed->request_timeout,
                           fmt::format("provider.codedeploy service={}", service)};
  auto api = ApiClient::Create(std::move(options), clock);
  if (!api) return std::unexpected(api.error().WithContext(fmt::format("service {}", service)));
  return std::unique_ptr<Provider>(
      new CodeDeployProvider(std::string(service), std::move(*parsed), std::move(*api), clock));
}

CodeDeployProvider::CodeDeployProvider(std::string service, CodeDeploySettings settings,
                                       std::unique_ptr<ApiClient> api, core::Clock& clock)
    : service_(std::move(service)),
      settings_(std::move(settings)),
      api_(std::move(api)),
      clock_(clock) {}

ProviderCapabilities CodeDeployProvider::Capabilities() const {
  return ProviderCapabilities{.live_state = true, .history = true, .readiness = true};
}

std::string CodeDeployProvider::Marker(std::string_view idempotency_key) {
  return fmt::format("[backout key={}]", idempotency_key);
}

// ---- Reading CodeDeploy -----------------------------------------------------------------------

core::Result<json> CodeDeployProvider::Call(std::string_view action, const json& input,
                                            Transcript* transcript) const {
  auto result = api_->Call(action, input, true, transcript);
  if (!result) {
    return std::unexpected(
        result.error().ToError(fmt::format("{} for service {}", action, service_)));
  }
  return *result;
}

core::Result<DeploymentRecord> CodeDeployProvider::GetDeployment(const std::string& id,
                                                                 Transcript* transcript) const {
  auto output = Call("GetDeployment", json{{"deploymentId", id}}, transcript);
  if (!output) return std::unexpected(output.error());
  return ParseDeployment(output->value("deploymentInfo", json()));
}

core::Result<std::vector<std::string>> CodeDeployProvider::ListDeploymentIds(
    json filters, Transcript* transcript) const {
  filters["applicationName"] = settings_.application;
  filters["deploymentGroupName"] = settings_.deployment_group;
  std::vector<std::string> ids;
  for (int page = 0; page < kMaxSearchPages; ++page) {
    auto output = Call("ListDeployments", filters, transcript);
    if (!output) return std::unexpected(output.error());
    for (const json& id : output->value("deployments", json::array())) {
      if (id.is_string()) ids.push_back(id.get<std::string>());
    }
    std::string token = output->value("nextToken", "");
    if (token.empty()) return ids;
    filters["nextToken"] = token;
  }
  spdlog::warn(
      "provider.codedeploy: service={} ListDeployments has more than {} pages; reading "
      "only the first {} ids",
      service_, kMaxSearchPages, ids.size());
  return ids;
}

core::Result<std::vector<DeploymentRecord>> CodeDeployProvider::GetDeployments(
    const std::vector<std::string>& ids, Transcript* transcript) const {
  std::vector<DeploymentRecord> records;
  for (size_t begin = 0; begin < ids.size(); begin += kBatchLimit) {
    size_t end = std::min(ids.size(), begin + kBatchLimit);
    json batch(std::vector<std::string>(ids.begin() + begin, ids.begin() + end));
    auto output = Call("BatchGetDeployments", json{{"deploymentIds", batch}}, transcript);
    if (!output) return std::unexpected(output.error());
    for (const json& info : output->value("deploymentsInfo", json::array())) {
      auto record = ParseDeployment(info);
      if (!record) return std::unexpected(record.error());
      records.push_back(std::move(*record));
    }
  }
  return records;
}

core::Result<std::vector<InstanceResult>> CodeDeployProvider::GetInstances(
    const std::string& deployment_id, Transcript* transcript) const {
  std::vector<std::string> ids;
  json input{{"deploymentId", deployment_id}};
  for (int page = 0; page < kMaxSearchPages; ++page) {
    auto output = Call("ListDeploymentTargets", input, transcript);
    if (!output) return std::unexpected(output.error());
    for (const json& id : output->value("targetIds", json::array())) ids.push_back(id);
    std::string token = output->value("nextToken", "");
    if (token.empty()) break;
    input["nextToken"] = token;
  }

  std::vector<InstanceResult> instances;
  for (size_t begin = 0; begin < ids.size(); begin += kBatchLimit) {
    size_t end = std::min(ids.size(), begin + kBatchLimit);
    json batch(std::vector<std::string>(ids.begin() + begin, ids.begin() + end));
    auto output = Call("BatchGetDeploymentTargets",
                       json{{"deploymentId", deployment_id}, {"targetIds", batch}}, transcript);
    if (!output) return std::unexpected(output.error());
    for (const json& target : output->value("deploymentTargets", json::array())) {
      InstanceResult instance = ParseInstanceTarget(target);
      if (!instance.instance_id.empty()) instances.push_back(std::move(instance));
    }
  }
  return instances;
}

std::string CodeDeployProvider::GroupState::LiveVersion() const {
  if (!active.empty()) return active.front().version;
  return latest ? latest->version : "";
}

core::Result<CodeDeployProvider::GroupState> CodeDeployProvider::ReadGroupState(
    Transcript* transcript) const {
  GroupState state;
  auto group = Call("GetDeploymentGroup",
                    json{{"applicationName", settings_.application},
                         {"deploymentGroupName", settings_.deployment_group}},
                    transcript);
  if (!group) return std::unexpected(group.error());
  state.group_info = group->value("deploymentGroupInfo", json::object());

  // ListDeployments returns no order that the API promises, so sort by creation time.
  auto by_newest = [](const DeploymentRecord& a, const DeploymentRecord& b) {
    return a.create_time > b.create_time;
  };
  auto active_ids = ListDeploymentIds(
      json{{"includeOnlyStatuses", json(std::vector<std::string_view>(std::begin(kActiveStatuses),
                                                                      std::end(kActiveStatuses)))}},
      transcript);
  if (!active_ids) return std::unexpected(active_ids.error());
  auto active = GetDeployments(*active_ids, transcript);
  if (!active) return std::unexpected(active.error());
  state.active = std::move(*active);
  std::sort(state.active.begin(), state.active.end(), by_newest);

  std::string last_attempted =
      state.group_info.value("lastAttemptedDeployment", json::object()).value("deploymentId", "");
  std::string last_successful =
      state.group_info.value("lastSuccessfulDeployment", json::object()).value("deploymentId", "");
  std::vector<std::string> wanted;
  if (!last_attempted.empty()) wanted.push_back(last_attempted);
  if (!last_successful.empty() && last_successful != last_attempted) {
    wanted.push_back(last_successful);
  }
  auto known = GetDeployments(wanted, transcript);
  if (!known) return std::unexpected(known.error());
  for (DeploymentRecord& record : *known) {
    if (record.id == last_successful) state.last_successful = record;
    if (record.id == last_attempted) state.latest = record;
  }
  if (!state.active.empty() &&
      (!state.latest || state.active.front().create_time > state.latest->create_time)) {
    state.latest = state.active.front();
  }
  return state;
}

core::Result<std::optional<DeploymentRecord>> CodeDeployProvider::FindKnownGood(
    std::string_view live_version) const {
  auto ids = ListDeploymentIds(json{{"includeOnlyStatuses", {"Succeeded"}}}, nullptr);
  if (!ids) return std::unexpected(ids.error());
  auto records = GetDeployments(*ids, nullptr);
  if (!records) return std::unexpected(records.error());
  std::sort(records->begin(), records->end(),
            [](const DeploymentRecord& a, const DeploymentRecord& b) {
              return a.create_time > b.create_time;
            });
  for (const DeploymentRecord& record : *records) {
    if (record.version != live_version) return std::optional<DeploymentRecord>(record);
  }
  return std::optional<DeploymentRecord>();
}

core::Result<DeploymentRecord> CodeDeployProvider::FindTarget(std::string_view target) const {
  if (target.starts_with("d-")) {
    auto record = GetDeployment(std::string(target), nullptr);
    if (!record) return std::unexpected(record.error());
    if (record->application != settings_.application ||
        record->group != settings_.deployment_group) {
      return core::MakeError(core::ErrorCode::kNotFound,
                             "service {}: deployment {} belongs to {}/{}, not to {}/{}", service_,
                             target, record->application, record->group, settings_.application,
                             settings_.deployment_group);
    }
    return record;
  }

  // NOTE: This reads the whole history (up to kMaxSearchPages pages) to find one revision.
  auto ids = ListDeploymentIds(json::object(), nullptr);
  if (!ids) return std::unexpected(ids.error());
  auto records = GetDeployments(*ids, nullptr);
  if (!records) return std::unexpected(records.error());
  std::sort(records->begin(), records->end(),
            [](const DeploymentRecord& a, const DeploymentRecord& b) {
              return a.create_time > b.create_time;
            });
  const DeploymentRecord* any = nullptr;
  for (const DeploymentRecord& record : *records) {
    if (record.version != target) continue;
    if (record.status == "Succeeded") return record;
    if (any == nullptr) any = &record;
  }
  if (any != nullptr) return *any;
  return core::MakeError(core::ErrorCode::kNotFound,
                         "service {}: revision {} was never deployed to {}/{}, so CodeDeploy has "
                         "no record of how to deploy it; give a revision or deployment id from "
                         "the deployment group's history",
                         service_, target, settings_.application, settings_.deployment_group);
}

core::Result<std::optional<DeploymentRecord>> CodeDeployProvider::FindByMarker(
    const std::string& marker, Transcript* transcript) const {
  double since = EpochSecondsFromTime(clock_.Now() - kMarkerSearchWindow);
  auto ids = ListDeploymentIds(json{{"createTimeRange", {{"start", since}}}}, transcript);
  if (!ids) return std::unexpected(ids.error());
  auto records = GetDeployments(*ids, transcript);
  if (!records) return std::unexpected(records.error());
  for (const DeploymentRecord& record : *records) {
    if (record.description.find(marker) != std::string::npos) {
      return std::optional<DeploymentRecord>(record);
    }
  }
  return std::optional<DeploymentRecord>();
}

// ---- Provider reads ---------------------------------------------------------------------------

core::Result<LiveState> CodeDeployProvider::ReadLiveState() const {
  auto state = ReadGroupState(nullptr);
  if (!state) return std::unexpected(state.error());
  if (!state->latest) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "service {}: deployment group {}/{} has no deployment yet, so no "
                           "version runs",
                           service_, settings_.application, settings_.deployment_group);
  }

  LiveState live;
  live.version = state->LiveVersion();
  live.observed_at = clock_.Now();
  live.details = json{{"source", "CodeDeploy"},
                      {"application", settings_.application},
                      {"deployment_group", settings_.deployment_group},
                      {"latest_deployment", DeploymentDetails(*state->latest)},
                      {"auto_rollback_configuration",
                       state->group_info.value("autoRollbackConfiguration", json())}};
  if (state->last_successful) {
    live.details["last_successful_deployment"] = DeploymentDetails(*state->last_successful);
  }
  json active = json::array();
  for (const DeploymentRecord& record : state->active) active.push_back(DeploymentDetails(record));
  live.details["active_deployments"] = active;
  return live;
}

core::Result<std::vector<HistoryEntry>> CodeDeployProvider::History(core::Time since) const {
  auto ids = ListDeploymentIds(json{{"createTimeRange", {{"start", EpochSecondsFromTime(since)}}}},
                               nullptr);
  if (!ids) return std::unexpected(ids.error());
  auto records = GetDeployments(*ids, nullptr);
  if (!records) return std::unexpected(records.error());
  std::sort(records->begin(), records->end(),
            [](const DeploymentRecord& a, const DeploymentRecord& b) {
              return a.create_time < b.create_time;
            });

  // A deployment counts as a rollback when CodeDeploy made it to roll back, when Backout made it,
  // or when it brings back a revision that an earlier deployment in this history replaced.
  std::vector<HistoryEntry> entries;
  std::vector<std::string> replaced;  // versions of earlier successful deployments, now replaced
  std::string current;                // version of the latest successful deployment so far
  for (const DeploymentRecord& record : *records) {
    if (!record.create_time || *record.create_time < since) continue;
    HistoryEntry entry;
    entry.version = record.version;
    entry.time = *record.create_time;
    entry.actor = record.creator;
    entry.details = DeploymentDetails(record);
    if (record.IsCodeDeployRollback()) {
      entry.kind = HistoryKind::kRollback;
      entry.details["rollback_reason"] = "created by CodeDeploy's automatic rollback";
    } else if (record.description.find("[backout key=") != std::string::npos) {
      entry.kind = HistoryKind::kRollback;
      entry.details["rollback_reason"] = "created by Backout";
    } else if (std::find(replaced.begin(), replaced.end(), record.version) != replaced.end() &&
               record.version != current) {
      entry.kind = HistoryKind::kRollback;
      entry.details["rollback_reason"] = "redeploys a revision that a later deployment replaced";
    }
    if (record.status == "Succeeded" && record.version != current) {
      if (!current.empty()) replaced.push_back(current);
      current = record.version;
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

core::Result<std::vector<Precondition>> CodeDeployProvider::Preconditions() const {
  std::vector<Precondition> checks;
  auto state = ReadGroupState(nullptr);
  checks.push_back(
      Precondition{.name = "deployment group readable",
                   .satisfied = state.has_value(),
                   .detail = state ? fmt::format("{}/{} in {} read with credentials from {}",
                                                 settings_.application, settings_.deployment_group,
                                                 settings_.region, settings_.credentials_source)
                                   : state.error().message});
  if (!state) return checks;

  // The effective configuration, from the API: infrastructure code may claim otherwise.
  json auto_rollback = state->group_info.value("autoRollbackConfiguration", json());
  checks.push_back(Precondition{
      .name = "CodeDeploy automatic rollback",
      .satisfied = true,
      .detail = auto_rollback.is_null()
                    ? "not configured on the deployment group"
                    : fmt::format("the deployment group has {}", auto_rollback.dump())});

  std::string running = "no deployment is running";
  if (!state->active.empty()) {
    const DeploymentRecord& active = state->active.front();
    running = fmt::format(
        "{} of {} is {} (creator {}); the plan {}", active.id, active.version, active.status,
        active.creator,
        active.IsCodeDeployRollback() ? "waits for CodeDeploy's own rollback" : "stops it first");
  }
  checks.push_back(
      Precondition{.name = "deployment in progress", .satisfied = true, .detail = running});

  auto good = FindKnownGood(state->LiveVersion());
  Precondition known_good{.name = "earlier successful revision", .satisfied = false, .detail = ""};
  if (!good) {
    known_good.detail = good.error().message;
  } else if (!*good) {
    known_good.detail = fmt::format(
        "no successful deployment of a revision other than the live {} exists, so CodeDeploy's "
        "own rule finds nothing to roll back to",
        state->LiveVersion());
  } else {
    known_good.satisfied = true;
    known_good.detail =
        fmt::format("{} ({}, {})", (*good)->version, (*good)->id,
                    (*good)->create_time ? core::FormatTime(*(*good)->create_time) : "no time");
  }
  checks.push_back(std::move(known_good));
  return checks;
}

core::Result<Readiness> CodeDeployProvider::CheckReadiness() const {
  auto state = ReadGroupState(nullptr);
  if (!state) return std::unexpected(state.error());
  if (!state->active.empty()) {
    const DeploymentRecord& active = state->active.front();
    return Readiness{false, fmt::format("deployment {} of {} is still {}", active.id,
                                        active.version, active.status)};
  }
  if (!state->latest) {
    return Readiness{false, "the deployment group has no deployment"};
  }
  const DeploymentRecord& latest = *state->latest;
  if (latest.status != "Succeeded") {
    return Readiness{
        false,
        fmt::format("the latest deployment {} of {} ended {}{}", latest.id, latest.version,
                    latest.status,
                    latest.error_message.empty() ? "" : fmt::format(": {}", latest.error_message)),
        /*failed=*/true};
  }

  // A deployment can succeed with some instances failed, which is not ready.
  auto instances = GetInstances(latest.id, nullptr);
  if (!instances) return std::unexpected(instances.error());
  std::vector<InstanceResult> failed;
  for (const InstanceResult& instance : *instances) {
    if (instance.status != "Succeeded") failed.push_back(instance);
  }
  if (!failed.empty()) {
    return Readiness{false, fmt::format("deployment {} of {} succeeded, but not on {}", latest.id,
                                        latest.version, DescribeInstances(failed))};
  }
  return Readiness{true, fmt::format("deployment {} of {} succeeded on all {} instances", latest.id,
                                     latest.version, instances->size())};
}

core::Result<ToolRecord> CodeDeployProvider::ReadBack(const ExecutionResult& execution) const {
  std::string id = execution.details.value("deployment_id", "");
  if (id.empty()) {
    auto live = ReadLiveState();
    if (!live) return std::unexpected(live.error().WithContext("cannot read back the rollback"));
    return ToolRecord{live->observed_at, live->version, live->details};
  }
  auto record = GetDeployment(id, nullptr);
  if (!record) return std::unexpected(record.error().WithContext("cannot read back the rollback"));
  json details = DeploymentDetails(*record);
  details["matches_target"] = record->version == execution.target_version;
  details["deployment_info"] = WithTimesAsText(record->raw);
  core::Time time = record->complete_time.value_or(record->create_time.value_or(clock_.Now()));
  return ToolRecord{time, record->version, details};
}

json CodeDeployProvider::DeploymentDetails(const DeploymentRecord& record) const {
  auto time = [](const std::optional<core::Time>& value) {
    return value ? json(core::FormatTime(*value)) : json(nullptr);
  };
  json details{{"deployment_id", record.id},
               {"status", record.status},
               {"creator", record.creator},
               {"version", record.version},
               {"revision", record.revision},
               {"description", record.description},
               {"create_time", time(record.create_time)},
               {"start_time", time(record.start_time)},
               {"complete_time", time(record.complete_time)}};
  if (!record.rollback_deployment_id.empty() || !record.triggering_deployment_id.empty() ||
      !record.rollback_message.empty()) {
    details["rollback_info"] = {
        {"rollback_deployment_id", record.rollback_deployment_id},
        {"rollback_triggering_deployment_id", record.triggering_deployment_id},
        {"rollback_message", record.rollback_message}};
  }
  if (!record.error_code.empty()) {
    details["error"] = {{"code", record.error_code}, {"message", record.error_message}};
  }
  return details;
}

// ---- Planning ---------------------------------------------------------------------------------

core::Result<Plan> CodeDeployProvider::MakePlan(std::string_view target_version) const {
  bool has_control = std::any_of(target_version.begin(), target_version.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7F;
  });
  if (has_control) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: the target version contains control characters; give "
                           "the revision as s3://BUCKET/KEY, github:REPO@COMMIT or a deployment id",
                           service_);
  }
  auto state = ReadGroupState(nullptr);
  if (!state) return std::unexpected(state.error().WithContext("cannot plan the rollback"));
  std::string live_version = state->LiveVersion();

  json action{{"application", settings_.application},
              {"deployment_group", settings_.deployment_group},
              {"region", settings_.region},
              {"endpoint", settings_.endpoint},
              {"from_version", live_version},
              {"latest_deployment_id", state->latest ? json(state->latest->id) : json(nullptr)}};
  Plan plan;
  plan.provider_kind = "codedeploy";
  plan.service = service_;
  // The rule and the deployment the target came from go into the summary, not the action: the
  // job plans again with the chosen revision as the target, and that plan must digest the same.
  std::string rule;
  auto finish = [&](std::string type, std::string summary) {
    action["type"] = type;
    plan.noop = type == "noop";
    plan.action = action;
    plan.digest = PlanDigest(plan.action);
    plan.summary =
        rule.empty() ? std::move(summary) : fmt::format("{} (target: {})", summary, rule);
    return plan;
  };

  // Step 1: the target revision, named or by CodeDeploy's own rule. A rollback CodeDeploy
  // started itself, running or finished, already chose the revision, and racing it with another
  // would deploy twice.
  const DeploymentRecord* codedeploy_rollback = nullptr;
  for (const DeploymentRecord& active : state->active) {
    if (active.IsCodeDeployRollback() && codedeploy_rollback == nullptr) {
      codedeploy_rollback = &active;
    }
  }
  if (codedeploy_rollback == nullptr && state->active.empty() && state->latest &&
      state->latest->IsCodeDeployRollback() && state->latest->status == "Succeeded") {
    codedeploy_rollback = &*state->latest;
  }
  std::optional<DeploymentRecord> target;
  if (target_version.empty() && codedeploy_rollback != nullptr) {
    target = *codedeploy_rollback;
    rule =
        fmt::format("the revision CodeDeploy's own rollback {} restores", codedeploy_rollback->id);
  } else if (target_version.empty()) {
    auto good = FindKnownGood(live_version);
    if (!good) return std::unexpected(good.error().WithContext("cannot plan the rollback"));
    rule = "CodeDeploy's rule, the latest successful deployment of another revision";
    if (!*good) {
      std::string codedeploy_message = state->latest ? state->latest->rollback_message : "";
      action["target_version"] = nullptr;
      action["codedeploy_message"] = codedeploy_message;
      action["reason"] =
          fmt::format("{}/{} has no successful deployment of a revision other than the live {}",
                      settings_.application, settings_.deployment_group,
                      live_version.empty() ? "(none)" : live_version);
      plan.target_version = "";
      return finish("no_rollback_target",
                    fmt::format("nothing to roll back to: {}{}", ActionText(action, "reason"),
                                codedeploy_message.empty()
                                    ? ""
                                    : fmt::format(" (CodeDeploy: {})", codedeploy_message)));
    }
    target = **good;
  } else {
    auto found = FindTarget(target_version);
    if (!found) return std::unexpected(found.error());
    target = *found;
    rule = target_version.starts_with("d-") ? "the revision of the named deployment"
                                            : "the named revision";
  }
  plan.target_version = target->version;
  action["target_version"] = target->version;
  action["target_revision"] = target->revision;
  rule += fmt::format(", deployed by {}", target->id);

  // Step 2: what the deployment group is doing decides the action.
  json create{{"fileExistsBehavior", settings_.file_exists_behavior},
              {"ignoreApplicationStopFailures", settings_.ignore_application_stop_failures},
              {"autoRollbackConfiguration", {{"enabled", false}, {"events", json::array()}}}};
  if (!settings_.deployment_config_name.empty()) {
    create["deploymentConfigName"] = settings_.deployment_config_name;
  }
  if (!state->active.empty()) {
    const DeploymentRecord& running = state->active.front();
    if (running.IsCodeDeployRollback() || running.version == target->version) {
      action["attach_deployment_id"] = running.id;
      return finish("attach",
                    fmt::format("wait for {} ({}, creator {}) already deploying {} instead of "
                                "starting another deployment",
                                running.id, running.status, running.creator, running.version));
    }
    action["stop_deployment_id"] = running.id;
    bool codedeploy_restores_target =
        state->last_successful && state->last_successful->version == target->version;
    if (codedeploy_restores_target) {
      action["auto_rollback"] = true;
      return finish("stop_and_rollback",
                    fmt::format("stop {} ({} of {}) with CodeDeploy's automatic rollback to {}",
                                running.id, running.status, running.version, target->version));
    }
    action["auto_rollback"] = false;
    action["create"] = create;
    return finish("stop_then_deploy",
                  fmt::format("stop {} ({} of {}), then deploy {} with fileExistsBehavior {}",
                              running.id, running.status, running.version, target->version,
                              settings_.file_exists_behavior));
  }

  if (state->latest && state->latest->status == "Succeeded" &&
      state->latest->version == target->version) {
    return finish("noop", fmt::format("nothing to do: {} already runs {} (deployment {})", service_,
                                      target->version, state->latest->id));
  }
  action["create"] = create;
  return finish("redeploy", fmt::format("deploy {} to {}/{} with fileExistsBehavior {} (live: {})",
                                        target->version, settings_.application,
                                        settings_.deployment_group, settings_.file_exists_behavior,
                                        live_version.empty() ? "none" : live_version));
}

core::Result<void> CodeDeployProvider::ValidatePlan(const Plan& plan) const {
  if (auto origin = CheckPlanOrigin(plan, "codedeploy", service_); !origin) {
    return std::unexpected(origin.error());
  }
  if (ActionText(plan.action, "application") != settings_.application ||
      ActionText(plan.action, "deployment_group") != settings_.deployment_group) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: the plan is for {}/{}, but the provider is configured for "
                           "{}/{}; plan again",
                           service_, ActionText(plan.action, "application"),
                           ActionText(plan.action, "deployment_group"), settings_.application,
                           settings_.deployment_group);
  }
  return {};
}

// ---- Execution --------------------------------------------------------------------------------

ExecutionResult CodeDeployProvider::Finish(Run& run, RollbackOutcome outcome,
                                           std::string message) const {
  run.result.outcome = outcome;
  run.result.message = std::move(message);
  run.result.finished_at = clock_.Now();
  spdlog::info("provider.codedeploy: service={} incident={} outcome={} message=\"{}\"", service_,
               run.context.incident_id, core::RollbackOutcomeName(outcome), run.result.message);
  return run.result;
}

bool CodeDeployProvider::Sleep(milliseconds delay, const std::stop_token& stop) const {
  constexpr milliseconds kSlice{20};
  while (delay.count() > 0) {
    if (stop.stop_requested()) return false;
    milliseconds step = std::min(delay, kSlice);
    std::this_thread::sleep_for(step);
    delay -= step;
  }
  return !stop.stop_requested();
}

bool CodeDeployProvider::RecordStart(Run& run, json tool) const {
  StartedAction started{clock_.Now(), std::nullopt, std::move(tool)};
  if (run.context.on_started) {
    auto recorded = run.context.on_started(started);
    if (!recorded) {
      spdlog::warn("provider.codedeploy: service={} incident={} could not record the start: {}",
                   service_, run.context.incident_id, recorded.error().message);
      run.result.details["start_not_recorded"] = recorded.error().message;
      return false;
    }
  }
  run.result.started = started;
  return true;
}

json CodeDeployProvider::CreateInput(const Plan& plan, const std::string& description) const {
  json input = plan.action.value("create", json::object());
  input["applicationName"] = settings_.application;
  input["deploymentGroupName"] = settings_.deployment_group;
  input["revision"] = plan.action.value("target_revision", json());
  input["description"] = description;
  return input;
}

core::Result<ExecutionResult> CodeDeployProvider::Execute(const Plan& plan,
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
  result.from_version = ActionText(plan.action, "from_version");
  result.started_at = clock_.Now();
  Run run{plan, std::string(idempotency_key), context, result,
          clock_.Now() + std::chrono::duration_cast<core::Duration>(settings_.timeout)};
  std::string type = ActionText(plan.action, "type");
  spdlog::info("provider.codedeploy: service={} incident={} executing {} to {}", service_,
               context.incident_id, type, plan.target_version);

  if (type == "noop") {
    result.live_version = result.from_version;
    return Finish(
        run, RollbackOutcome::kSkippedNoop,
        fmt::format("{} was already live when planned; nothing was deployed", plan.target_version));
  }
  if (type == "no_rollback_target") {
    std::string codedeploy_message = ActionText(plan.action, "codedeploy_message");
    return Finish(
        run, RollbackOutcome::kNoRollbackTarget,
        fmt::format("{}{}; roll forward with a fix instead", ActionText(plan.action, "reason"),
                    codedeploy_message.empty()
                        ? ""
                        : fmt::format("; CodeDeploy says: {}", codedeploy_message)));
  }
  if (type == "attach") {
    std::string id = ActionText(plan.action, "attach_deployment_id");
    if (!RecordStart(run, json{{"type", type}, {"deployment_id", id}})) {
      return Finish(run, RollbackOutcome::kFailed,
                    "could not record the start, so Backout did not follow deployment " + id);
    }
    return Follow(run, id);
  }
  if (type == "stop_and_rollback") return StopAndFollow(run);
  if (type == "stop_then_deploy") return StopThenDeploy(run);
  if (type == "redeploy") return Redeploy(run);
  return core::MakeError(core::ErrorCode::kInvalidArgument,
                         "service {}: the plan's action type '{}' is unknown; plan again", service_,
                         type);
}

core::Result<std::string> CodeDeployProvider::StartDeployment(Run& run) const {
  std::string marker = Marker(run.key);
  Transcript& transcript = run.result.transcript;

  // Step 1: a retry of the same job must not deploy twice.
  auto earlier = FindByMarker(marker, &transcript);
  if (!earlier) return std::unexpected(earlier.error());
  if (*earlier) {
    spdlog::info("provider.codedeploy: service={} incident={} adopting {} from an earlier attempt",
                 service_, run.context.incident_id, (*earlier)->id);
    run.result.details["adopted_earlier_attempt"] = true;
    return (*earlier)->id;
  }

  // Step 2: CreateDeployment, never repeated before checking whether the last attempt landed.
  std::string description = fmt::format("Backout rollback of {} to {} for incident {} {}", service_,
                                        run.plan.target_version, run.context.incident_id, marker);
  json input = CreateInput(run.plan, description);
  milliseconds backoff = settings_.poll_interval;
  int uncertain = 0;
  while (true) {
    auto created = api_->Call("CreateDeployment", input, false, &transcript);
    if (created) {
      std::string id = created->value("deploymentId", "");
      if (!id.empty()) return id;
    }
    ApiFailure failure = created ? ApiFailure{ApiFailure::Kind::kApi, 200, "MalformedResponse",
                                              "the response has no deploymentId"}
                                 : created.error();

    if (clock_.Now() >= run.deadline) {
      return core::MakeError(core::ErrorCode::kTimeout,
                             "could not start the rollback deployment within {}: {}",
                             FormatLimit(settings_.timeout), failure.Describe());
    }
    if (failure.MayHaveRun()) {
      // The deployment may exist although its id never arrived: look before trying again.
      ++uncertain;
      spdlog::warn(
          "provider.codedeploy: service={} incident={} CreateDeployment response lost ({}); "
          "searching for {}",
          service_, run.context.incident_id, failure.Describe(), marker);
      for (int search = 0; search < 3; ++search) {
        auto found = FindByMarker(marker, &transcript);
        if (found && *found) return (*found)->id;
        if (!Sleep(settings_.poll_interval * (search + 1), run.context.stop)) break;
      }
      if (uncertain >= kMaxUncertainCreates) {
        return core::MakeError(core::ErrorCode::kUnavailable,
                               "CreateDeployment failed {} times without a response and no "
                               "deployment carrying {} exists: {}",
                               uncertain, marker, failure.Describe());
      }
      continue;
    }
    if (failure.Is("DeploymentLimitExceededException")) {
      // Another deployment started after the plan; wait for it rather than race it. A rollback
      // CodeDeploy started itself to the same revision is followed instead.
      auto state = ReadGroupState(&transcript);
      if (state) {
        for (const DeploymentRecord& active : state->active) {
          if (active.IsCodeDeployRollback() && active.version == run.plan.target_version) {
            run.result.details["attached_to_codedeploy_rollback"] = active.id;
            return active.id;
          }
        }
      }
      spdlog::info(
          "provider.codedeploy: service={} incident={} deployment group busy ({}); "
          "waiting {} ms",
          service_, run.context.incident_id, failure.message, backoff.count());
    } else if (!failure.IsRetryable()) {
      return std::unexpected(failure.ToError("CreateDeployment"));
    }
    if (!Sleep(backoff, run.context.stop)) {
      return core::MakeError(core::ErrorCode::kFailedPrecondition,
                             "stopped on request before the rollback deployment started");
    }
    backoff = std::min(backoff * 2, settings_.max_poll_interval);
  }
}

ExecutionResult CodeDeployProvider::Redeploy(Run& run) const {
  auto id = StartDeployment(run);
  if (!id) {
    return Finish(run, RollbackOutcome::kFailed,
                  fmt::format("the rollback deployment of {} did not start: {}",
                              run.plan.target_version, id.error().message));
  }
  run.result.details["deployment_id"] = *id;
  if (!RecordStart(run, json{{"type", ActionText(run.plan.action, "type")},
                             {"deployment_id", *id},
                             {"marker", Marker(run.key)}})) {
    auto stopped =
        api_->Call("StopDeployment", json{{"deploymentId", *id}, {"autoRollbackEnabled", false}},
                   true, &run.result.transcript);
    return Finish(
        run, RollbackOutcome::kFailed,
        fmt::format("could not record the start of deployment {}, so it was {}", *id,
                    stopped
                        ? "stopped"
                        : "left running (the stop failed: " + stopped.error().Describe() + ")"));
  }
  return Follow(run, *id);
}

ExecutionResult CodeDeployProvider::StopAndFollow(Run& run) const {
  std::string id = ActionText(run.plan.action, "stop_deployment_id");
  Transcript& transcript = run.result.transcript;
  auto stopped =
      api_->Call("StopDeployment", json{{"deploymentId", id}, {"autoRollbackEnabled", true}}, true,
                 &transcript);
  if (!stopped && !stopped.error().Is("DeploymentAlreadyCompletedException")) {
    return Finish(run, RollbackOutcome::kFailed,
                  fmt::format("StopDeployment of {} failed: {}", id, stopped.error().Describe()));
  }
  if (stopped) {
    run.result.details["stop_status"] = stopped->value("status", "");
    run.result.details["stop_message"] = stopped->value("statusMessage", "");
  }
  if (!RecordStart(run, json{{"type", "stop_and_rollback"}, {"stopped_deployment_id", id}})) {
    return Finish(run, RollbackOutcome::kFailed,
                  fmt::format("could not record the start after stopping {}; CodeDeploy rolls it "
                              "back by itself, follow it there",
                              id));
  }

  // Step 1: wait for the stop, then for the rollback CodeDeploy starts.
  auto finished = WaitFinished(run, id);
  if (!finished) return Finish(run, RollbackOutcome::kInterrupted, finished.error().message);
  if (!*finished) {
    return Finish(run, RollbackOutcome::kInterrupted,
                  fmt::format("deployment {} did not stop within {}; {}", id,
                              FormatLimit(settings_.timeout), kConfirmHint));
  }
  DeploymentRecord record = **finished;
  for (int poll = 0; poll < kRollbackInfoPolls && record.rollback_deployment_id.empty() &&
                     record.rollback_message.empty();
       ++poll) {
    if (!Sleep(settings_.poll_interval, run.context.stop)) break;
    auto again = GetDeployment(id, &transcript);
    if (again) record = *again;
  }
  run.result.details["stopped_deployment"] = DeploymentDetails(record);

  if (record.status == "Succeeded" && record.rollback_deployment_id.empty()) {
    return Finish(run, RollbackOutcome::kPreconditionFailed,
                  fmt::format("deployment {} of {} succeeded before it could be stopped, so "
                              "CodeDeploy rolled nothing back; plan again",
                              id, record.version));
  }
  if (record.rollback_deployment_id.empty()) {
    if (!record.rollback_message.empty()) {
      return Finish(run, RollbackOutcome::kNoRollbackTarget,
                    fmt::format("CodeDeploy stopped {} ({}) but started no rollback: {}", id,
                                record.status, record.rollback_message));
    }
    return Finish(run, RollbackOutcome::kFailed,
                  fmt::format("CodeDeploy stopped {} ({}) but started no rollback deployment", id,
                              record.status));
  }

  // Step 2: CodeDeploy's rollback is a new deployment; it is the rollback Backout reports.
  spdlog::info(
      "provider.codedeploy: service={} incident={} following CodeDeploy's rollback {} "
      "of {}",
      service_, run.context.incident_id, record.rollback_deployment_id, id);
  return Follow(run, record.rollback_deployment_id);
}

ExecutionResult CodeDeployProvider::StopThenDeploy(Run& run) const {
  std::string id = ActionText(run.plan.action, "stop_deployment_id");
  auto stopped =
      api_->Call("StopDeployment", json{{"deploymentId", id}, {"autoRollbackEnabled", false}}, true,
                 &run.result.transcript);
  if (!stopped && !stopped.error().Is("DeploymentAlreadyCompletedException")) {
    return Finish(run, RollbackOutcome::kFailed,
                  fmt::format("StopDeployment of {} failed: {}", id, stopped.error().Describe()));
  }
  auto finished = WaitFinished(run, id);
  if (!finished) return Finish(run, RollbackOutcome::kFailed, finished.error().message);
  if (!*finished) {
    return Finish(run, RollbackOutcome::kFailed,
                  fmt::format("deployment {} did not stop within {}; nothing was deployed", id,
                              FormatLimit(settings_.timeout)));
  }
  run.result.details["stopped_deployment"] = DeploymentDetails(**finished);
  return Redeploy(run);
}

core::Result<std::optional<DeploymentRecord>> CodeDeployProvider::WaitFinished(
    Run& run, const std::string& deployment_id) const {
  Transcript& transcript = run.result.transcript;
  milliseconds delay = settings_.poll_interval;
  bool stop_sent = false;
  std::string last_status;
  while (true) {
    auto record = GetDeployment(deployment_id, &transcript);
    if (record) {
      if (record->IsTerminal()) return std::optional<DeploymentRecord>(*record);
      if (record->status != last_status) {
        spdlog::info("provider.codedeploy: service={} incident={} deployment {} is {}", service_,
                     run.context.incident_id, deployment_id, record->status);
        last_status = record->status;
      }
    } else if (record.error().code != core::ErrorCode::kUnavailable &&
               record.error().code != core::ErrorCode::kTimeout) {
      return std::unexpected(record.error());
    }
    if (clock_.Now() >= run.deadline) return std::optional<DeploymentRecord>();

    // A stop request stops the deployment, then waits for CodeDeploy to record it.
    if (run.context.stop.stop_requested() && !stop_sent) {
      stop_sent = true;
      run.result.details["stopped_on_request"] = true;
      auto stopped = api_->Call(
          "StopDeployment", json{{"deploymentId", deployment_id}, {"autoRollbackEnabled", false}},
          true, &transcript);
      spdlog::warn(
          "provider.codedeploy: service={} incident={} stop requested; StopDeployment {}: "
          "{}",
          service_, run.context.incident_id, deployment_id,
          stopped ? "sent" : stopped.error().Describe());
    }
    if (stop_sent) {
      std::this_thread::sleep_for(settings_.poll_interval);
    } else if (!Sleep(delay, run.context.stop)) {
      continue;
    }
    delay = std::min(delay * 2, settings_.max_poll_interval);
  }
}

ExecutionResult CodeDeployProvider::Follow(Run& run, const std::string& deployment_id) const {
  run.result.details["deployment_id"] = deployment_id;
  auto finished = WaitFinished(run, deployment_id);
  if (!finished) {
    return Finish(run, RollbackOutcome::kInterrupted,
                  fmt::format("could not read deployment {}: {}; {}", deployment_id,
                              finished.error().message, kConfirmHint));
  }
  if (!*finished) {
    return Finish(run, RollbackOutcome::kInterrupted,
                  fmt::format("deployment {} was still running after {} and was left running; "
                              "follow it in CodeDeploy, then {}",
                              deployment_id, FormatLimit(settings_.timeout), kConfirmHint));
  }
  return Conclude(run, **finished);
}

ExecutionResult CodeDeployProvider::Conclude(Run& run, const DeploymentRecord& deployment) const {
  run.result.details.update(DeploymentDetails(deployment));
  auto instances = GetInstances(deployment.id, &run.result.transcript);
  std::vector<InstanceResult> failed;
  size_t succeeded = 0;
  if (instances) {
    for (const InstanceResult& instance : *instances) {
      if (instance.status == "Succeeded") {
        ++succeeded;
      } else {
        failed.push_back(instance);
      }
    }
    run.result.details["instances"] = InstancesJson(*instances);
  } else {
    run.result.details["instances_error"] = instances.error().message;
  }
  std::string target = run.plan.target_version;
  std::string instances_note =
      instances ? "" : fmt::format(" (instances unreadable: {})", instances.error().message);

  if (deployment.status == "Succeeded") {
    run.result.live_version = deployment.version;
    if (deployment.version != target) {
      return Finish(run, RollbackOutcome::kPreconditionFailed,
                    fmt::format("deployment {} succeeded but deployed {}, not the approved target "
                                "{}; plan again",
                                deployment.id, deployment.version, target));
    }
    if (failed.empty()) {
      return Finish(run, RollbackOutcome::kRolledBack,
                    fmt::format("deployment {} of {} succeeded on {} instances{}", deployment.id,
                                deployment.version, succeeded, instances_note));
    }
    return Finish(
        run, RollbackOutcome::kPartial,
        fmt::format("deployment {} of {} succeeded on {} instances, but these did not "
                    "take it and may still run the bad revision: {}",
                    deployment.id, deployment.version, succeeded, DescribeInstances(failed)));
  }

  std::string error =
      deployment.error_message.empty()
          ? ""
          : fmt::format(" ({}: {})", deployment.error_code, deployment.error_message);
  std::string codedeploy_rollback = deployment.rollback_deployment_id.empty()
                                        ? ""
                                        : fmt::format("; CodeDeploy started its own rollback {}",
                                                      deployment.rollback_deployment_id);
  if (deployment.status == "Failed" && succeeded > 0) {
    return Finish(run, RollbackOutcome::kPartial,
                  fmt::format("rollback deployment {} of {} failed{}: {} instances took it, these "
                              "did not: {}{}",
                              deployment.id, deployment.version, error, succeeded,
                              DescribeInstances(failed), codedeploy_rollback));
  }
  if (deployment.status == "Stopped" && run.result.details.value("stopped_on_request", false)) {
    return Finish(run, RollbackOutcome::kFailed,
                  fmt::format("rollback deployment {} of {} was stopped on request before it "
                              "finished; instances: {}",
                              deployment.id, deployment.version, DescribeInstances(failed)));
  }
  return Finish(run, RollbackOutcome::kFailed,
                fmt::format("rollback deployment {} of {} ended {}{}{}{}{}", deployment.id,
                            deployment.version, deployment.status, error,
                            failed.empty() ? "" : "; instances: ", DescribeInstances(failed),
                            codedeploy_rollback));
}

core::Result<ExecutionResult> CodeDeployProvider::Resume(const ResumeRequest& request,
                                                         const ExecutionContext& context) const {
  const Plan& plan = request.plan;
  if (auto valid = ValidatePlan(plan); !valid) return std::unexpected(valid.error());
  std::string type = ActionText(plan.action, "type");
  if (type == "noop" || type == "no_rollback_target") {
    ExecutionContext quiet{
        context.incident_id, context.executor, context.approver, {}, context.stop};
    return Execute(plan, request.idempotency_key.empty() ? "resume" : request.idempotency_key,
                   quiet);
  }

  ExecutionResult result;
  result.target_version = plan.target_version;
  result.from_version = ActionText(plan.action, "from_version");
  result.started_at = request.started ? request.started->started_at : clock_.Now();
  result.started = request.started;
  Run run{plan, request.idempotency_key, context, result,
          clock_.Now() + std::chrono::duration_cast<core::Duration>(settings_.timeout)};
  json tool = request.started ? request.started->tool : json::object();

  // Step 1: a deployment whose id was recorded is simply followed.
  std::string id = tool.value("deployment_id", "");
  if (!id.empty()) return Follow(run, id);

  // Step 2: a CreateDeployment that may have run before its id was recorded.
  if (type == "redeploy" || type == "stop_then_deploy") {
    if (request.idempotency_key.empty()) {
      return Finish(run, RollbackOutcome::kInterrupted,
                    fmt::format("no idempotency key was stored, so Backout cannot look for the "
                                "rollback deployment; {}",
                                kConfirmHint));
    }
    auto found = FindByMarker(Marker(request.idempotency_key), &result.transcript);
    if (!found) {
      return Finish(run, RollbackOutcome::kInterrupted,
                    fmt::format("cannot tell whether the rollback deployment started: {}; {}",
                                found.error().message, kConfirmHint));
    }
    if (*found) return Follow(run, (*found)->id);
    return Finish(run, RollbackOutcome::kFailed,
                  fmt::format("no deployment carrying {} exists in {}/{}: the rollback "
                              "deployment never started; roll back again",
                              Marker(request.idempotency_key), settings_.application,
                              settings_.deployment_group));
  }

  // Step 3: a stop whose effect CodeDeploy records on the stopped deployment.
  if (type == "stop_and_rollback") {
    std::string stopped_id = ActionText(plan.action, "stop_deployment_id");
    auto record = GetDeployment(stopped_id, &result.transcript);
    if (!record) {
      return Finish(
          run, RollbackOutcome::kInterrupted,
          fmt::format("cannot read {}: {}; {}", stopped_id, record.error().message, kConfirmHint));
    }
    if (!record->rollback_deployment_id.empty()) return Follow(run, record->rollback_deployment_id);
    if (!record->IsTerminal()) {
      return Finish(run, RollbackOutcome::kFailed,
                    fmt::format("deployment {} still runs ({}): the stop never reached CodeDeploy; "
                                "roll back again",
                                stopped_id, record->status));
    }
    return Finish(
        run, RollbackOutcome::kFailed,
        fmt::format(
            "deployment {} ended {} and CodeDeploy started no rollback{}", stopped_id,
            record->status,
            record->rollback_message.empty() ? "" : fmt::format(": {}", record->rollback_message)));
  }
  if (type == "attach") return Follow(run, ActionText(plan.action, "attach_deployment_id"));
  return core::MakeError(core::ErrorCode::kInvalidArgument,
                         "service {}: the plan's action type '{}' is unknown; plan again", service_,
                         type);
}

}  // namespace backout::providers::codedeploy
