#include "providers/unleash/unleash_provider.h"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "providers/command/process.h"

namespace backout::providers::unleash {
namespace {

using nlohmann::json;

// Unleash rejects tag values longer than this (TAG_MAX_LENGTH in unleash-server 7.5.1).
constexpr size_t kTagMaxLength = 50;
// Dependent flags read one by one for the assessment; more are listed by name only.
constexpr size_t kMaxDependentsRead = 20;
// Events read for a read-back, and pages of events read for History.
constexpr int kReadBackEvents = 50;
constexpr int kHistoryPageSize = 1000;
constexpr int kMaxHistoryPages = 10;

constexpr std::string_view kConfirmHint =
    "confirm with `backout incident confirm ID --happened|--did-not-happen --reason TEXT`";

std::string ActionText(const json& action, std::string_view field) {
  auto it = action.find(field);
  return it != action.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string FormatOptionalTime(const std::optional<core::Time>& time) {
  return time ? core::FormatTime(*time) : "an unknown time";
}

// Cuts `text` to at most `limit` bytes without splitting a UTF-8 character.
std::string CutUtf8(std::string text, size_t limit) {
  if (text.size() <= limit) return text;
  size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  text.resize(end);
  return text;
}

std::optional<RollbackState> ParseState(std::string_view text) {
  if (text == "off") return RollbackState::kOff;
  if (text == "on") return RollbackState::kOn;
  if (text == "rollout-0") return RollbackState::kRolloutZero;
  return std::nullopt;
}

// Whether `version` satisfies `state`: a flag that is off serves nothing, so it satisfies a
// rollout of 0 % as well.
bool Satisfies(std::string_view version, RollbackState state) {
  if (version == RollbackStateName(state)) return true;
  return state == RollbackState::kRolloutZero && version == "off";
}

// Whether the change to `state` landed: the state is reached, or, for a rollout of 0 %, every
// rollout is 0 even though strategies without one still serve the flag.
bool Reached(const FlagState& flag, RollbackState state) {
  if (Satisfies(flag.Version(), state)) return true;
  return state == RollbackState::kRolloutZero && flag.enabled && flag.RolloutsAboveZero().empty();
}

std::string DescribeStrategies(const std::vector<Strategy>& strategies) {
  std::vector<std::string> parts;
  for (const Strategy& strategy : strategies) parts.push_back(strategy.Describe());
  return fmt::format("{}", fmt::join(parts, "; "));
}

}  // namespace

// ---- Creation ---------------------------------------------------------------------------------

core::Result<std::unique_ptr<Provider>> UnleashProvider::Create(std::string_view service,
                                                                const json& settings,
                                                                const SecretValues& secrets,
                                                                core::Clock& clock) {
  if (service.empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "unleash provider: the service name is empty");
  }
  auto parsed = ParseUnleashSettings(service, settings, secrets);
  if (!parsed) return std::unexpected(parsed.error());
  auto api = AdminClient::Create(parsed->url, parsed->api_token, parsed->request_timeout,
                                 fmt::format("provider.unleash service={}", service), clock);
  if (!api) return std::unexpected(api.error().WithContext(fmt::format("service {}", service)));
  return std::unique_ptr<Provider>(
      new UnleashProvider(std::string(service), std::move(*parsed), std::move(*api), clock));
}

UnleashProvider::UnleashProvider(std::string service, UnleashSettings settings,
                                 std::unique_ptr<AdminClient> api, core::Clock& clock)
    : service_(std::move(service)),
      settings_(std::move(settings)),
      api_(std::move(api)),
      clock_(clock) {}

ProviderCapabilities UnleashProvider::Capabilities() const {
  return ProviderCapabilities{.live_state = true, .history = true, .readiness = true};
}

std::string UnleashProvider::AuditTagValue(std::string_view incident_id,
                                           std::string_view executor) {
  std::string value = fmt::format("backout {}", incident_id.empty() ? "-" : incident_id);
  if (!executor.empty()) value += fmt::format(" by {}", executor);
  return CutUtf8(std::move(value), kTagMaxLength);
}

// ---- Reading Unleash --------------------------------------------------------------------------

std::string UnleashProvider::FeaturePath() const {
  return fmt::format("/api/admin/projects/{}/features/{}", EncodeComponent(settings_.project),
                     EncodeComponent(settings_.flag));
}

std::string UnleashProvider::EnvironmentPath() const {
  return fmt::format("{}/environments/{}", FeaturePath(), EncodeComponent(settings_.environment));
}

core::Result<FlagState> UnleashProvider::ReadFlag(Transcript* transcript) const {
  auto feature = api_->Get(FeaturePath(), transcript);
  if (!feature) {
    if (!feature.error().transport && feature.error().status == 404) {
      return std::unexpected(ExplainMissingFlag(feature.error()));
    }
    return std::unexpected(feature.error().ToError(
        fmt::format("reading flag {} for service {}", settings_.flag, service_)));
  }
  auto state = ParseFlagState(*feature, settings_.environment);
  if (state) return state;

  // The project lacks the environment, so check whether Unleash has it at all.
  auto environment = api_->Get(
      fmt::format("/api/admin/environments/{}", EncodeComponent(settings_.environment)), nullptr);
  if (!environment && !environment.error().transport && environment.error().status == 404) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "service {}: Unleash has no environment '{}' ({}); check "
                           "`environment` in the provider settings",
                           service_, settings_.environment, environment.error().message);
  }
  return std::unexpected(state.error().WithContext(
      fmt::format("service {}: environment '{}' is not enabled in project {}; enable it there "
                  "or check `environment`",
                  service_, settings_.environment, settings_.project)));
}

core::Error UnleashProvider::ExplainMissingFlag(const ApiFailure& failure) const {
  auto project = api_->Get(
      fmt::format("/api/admin/projects/{}/overview", EncodeComponent(settings_.project)), nullptr);
  if (!project && !project.error().transport && project.error().status == 404) {
    return core::Error{core::ErrorCode::kFailedPrecondition,
                       fmt::format("service {}: Unleash has no project '{}' ({}); check `project` "
                                   "in the provider settings",
                                   service_, settings_.project, project.error().message)};
  }

  // Unleash returns 404 for an archived flag too, so the archive search separates the two cases.
  auto archived = api_->Get(
      fmt::format("/api/admin/search/features?query={}&project=IS:{}&archived=IS:true&limit=50",
                  EncodeComponent(settings_.flag), EncodeComponent(settings_.project)),
      nullptr);
  if (archived) {
    for (const json& feature : archived->value("features", json::array())) {
      if (feature.value("name", "") != settings_.flag) continue;
      return core::Error{
          core::ErrorCode::kFailedPrecondition,
          fmt::format("service {}: flag {} in project {} is archived (since {}), so Unleash "
                      "serves it to no SDK and rejects changes to it; SDKs now return the "
                      "fallback value in the calling code. Revive the flag in Unleash or bind "
                      "the service to another flag",
                      service_, settings_.flag, settings_.project,
                      feature.value("archivedAt", "an unknown time"))};
    }
  }
  return core::Error{core::ErrorCode::kFailedPrecondition,
                     fmt::format("service {}: flag {} does not exist in project {} ({}); check "
                                 "`flag` and `project` in the provider settings",
                                 service_, settings_.flag, settings_.project, failure.message)};
}

std::vector<DependentFlag> UnleashProvider::ReadDependents(const FlagState& state) const {
  std::vector<DependentFlag> dependents;
  for (const std::string& child : state.children) {
    DependentFlag dependent;
    dependent.name = child;
    if (dependents.size() < kMaxDependentsRead) {
      auto feature =
          api_->Get(fmt::format("/api/admin/projects/{}/features/{}",
                                EncodeComponent(settings_.project), EncodeComponent(child)),
                    nullptr);
      if (feature) {
        for (const json& dependency : feature->value("dependencies", json::array())) {
          if (dependency.value("feature", "") != settings_.flag) continue;
          dependent.requires_parent_enabled = dependency.value("enabled", true);
          for (const json& variant : dependency.value("variants", json::array())) {
            if (variant.is_string()) dependent.required_variants.push_back(variant);
          }
        }
      }
    }
    dependents.push_back(std::move(dependent));
  }
  return dependents;
}

core::Result<std::vector<FlagEvent>> UnleashProvider::ReadEvents(std::string_view type, int limit,
                                                                 Transcript* transcript) const {
  std::string path =
      fmt::format("/api/admin/search/events?feature=IS:{}&project=IS:{}&limit={}",
                  EncodeComponent(settings_.flag), EncodeComponent(settings_.project), limit);
  if (!type.empty()) path += fmt::format("&type=IS:{}", EncodeComponent(type));
  auto response = api_->Get(path, transcript);
  if (!response) {
    return std::unexpected(response.error().ToError(
        fmt::format("reading the events of flag {} for service {}", settings_.flag, service_)));
  }
  std::vector<FlagEvent> events;
  for (FlagEvent& event : ParseEvents(*response)) {
    if (event.environment.empty() || event.environment == settings_.environment) {
      events.push_back(std::move(event));
    }
  }
  return events;
}

std::string UnleashProvider::DescribeOffServes(const FlagState& state,
                                               const std::vector<DependentFlag>& dependents) const {
  std::string text = fmt::format(
      "with {} off in {}, every SDK evaluation returns false and getVariant returns the "
      "'disabled' variant (Unleash has no off variation); an SDK that does not have the flag "
      "(archived, outside its token's project, never fetched and no backup file) returns the "
      "fallback value in the calling code, which may be the new behaviour",
      state.flag, state.environment);
  if (!dependents.empty()) {
    std::vector<std::string> effects;
    for (const DependentFlag& dependent : dependents) {
      if (!dependent.requires_parent_enabled) {
        effects.push_back(fmt::format("{} (dependency not read)", dependent.name));
      } else if (*dependent.requires_parent_enabled) {
        effects.push_back(fmt::format(
            "{} turns off (it needs {} on{})", dependent.name, state.flag,
            dependent.required_variants.empty()
                ? ""
                : fmt::format(" with variant {}", fmt::join(dependent.required_variants, " or "))));
      } else {
        effects.push_back(fmt::format("{} can turn ON (it is on only while {} is off)",
                                      dependent.name, state.flag));
      }
    }
    text += fmt::format("; dependent flags: {}", fmt::join(effects, "; "));
  }
  return text;
}

// ---- Provider reads ---------------------------------------------------------------------------

core::Result<LiveState> UnleashProvider::ReadLiveState() const {
  auto state = ReadFlag(nullptr);
  if (!state) return std::unexpected(state.error());
  LiveState live;
  live.version = state->Version();
  live.observed_at = clock_.Now();
  live.details = state->ToJson();
  live.details["source"] = "Unleash Admin API";
  live.details["url"] = settings_.url;
  return live;
}

core::Result<std::vector<HistoryEntry>> UnleashProvider::History(core::Time since) const {
  // The events API returns the newest first and filters by whole days only, so pages are read
  // until one reaches past `since`.
  std::vector<FlagEvent> events;
  for (int page = 0; page < kMaxHistoryPages; ++page) {
    std::string path =
        fmt::format("/api/admin/search/events?feature=IS:{}&project=IS:{}&limit={}&offset={}",
                    EncodeComponent(settings_.flag), EncodeComponent(settings_.project),
                    kHistoryPageSize, page * kHistoryPageSize);
    auto response = api_->Get(path, nullptr);
    if (!response) {
      return std::unexpected(response.error().ToError(
          fmt::format("reading the history of flag {} for service {}", settings_.flag, service_)));
    }
    std::vector<FlagEvent> batch = ParseEvents(*response);
    bool reached_since = false;
    for (FlagEvent& event : batch) {
      if (event.created_at && *event.created_at < since) reached_since = true;
      events.push_back(std::move(event));
    }
    if (reached_since || batch.size() < static_cast<size_t>(kHistoryPageSize)) break;
  }

  std::vector<HistoryEntry> entries;
  std::string rollback_version(RollbackStateName(settings_.rollback));
  for (auto it = events.rbegin(); it != events.rend(); ++it) {
    const FlagEvent& event = *it;
    if (!event.created_at || *event.created_at < since) continue;
    if (!event.environment.empty() && event.environment != settings_.environment) continue;
    std::string version = event.ResultingVersion();
    bool strategy_change = event.type == "feature-strategy-update" ||
                           event.type == "feature-strategy-add" ||
                           event.type == "feature-strategy-remove";
    if (version.empty() && strategy_change) version = "on";
    if (version.empty()) continue;

    bool by_backout = std::any_of(event.tags.begin(), event.tags.end(), [](const std::string& tag) {
      return tag.find(":backout ") != std::string::npos;
    });
    HistoryEntry entry;
    entry.version = version;
    entry.time = *event.created_at;
    entry.actor = event.created_by;
    entry.kind = Satisfies(version, settings_.rollback) && !strategy_change ? HistoryKind::kRollback
                                                                            : HistoryKind::kDeploy;
    if (event.type == "feature-strategy-update" && version == "rollout-0") {
      entry.kind = HistoryKind::kRollback;
    }
    entry.details = event.ToJson();
    entry.details["by_backout"] = by_backout;
    entry.details["rollback_state"] = rollback_version;
    entries.push_back(std::move(entry));
  }
  return entries;
}

core::Result<std::vector<Precondition>> UnleashProvider::Preconditions() const {
  std::vector<Precondition> checks;
  auto state = ReadFlag(nullptr);
  checks.push_back(Precondition{
      .name = "flag readable",
      .satisfied = state.has_value(),
      .detail = state ? fmt::format("{} in project {}, environment {}: {} ({} strategies) at {}",
                                    settings_.flag, settings_.project, settings_.environment,
                                    state->Version(), state->strategies.size(), settings_.url)
                      : state.error().message});
  if (!state) return checks;

  std::vector<DependentFlag> dependents = ReadDependents(*state);
  checks.push_back(Precondition{.name = "what off serves",
                                .satisfied = true,
                                .detail = DescribeOffServes(*state, dependents)});
  checks.push_back(
      Precondition{.name = "dependent flags",
                   .satisfied = true,
                   .detail = state->children.empty()
                                 ? fmt::format("no flag depends on {}", settings_.flag)
                                 : fmt::format("{} depend on {}: changing it changes them too",
                                               fmt::join(state->children, ", "), settings_.flag)});
  checks.push_back(Precondition{
      .name = "change requests",
      .satisfied = true,
      .detail = fmt::format(
          "Unleash's Admin API does not report before the change whether {} requires change "
          "requests; when it does and the token lacks SKIP_CHANGE_REQUEST, Unleash refuses the "
          "change and the rollback ends pending_approval with Unleash's message",
          settings_.environment)});
  if (settings_.rollback == RollbackState::kRolloutZero) {
    std::vector<Strategy> serving = state->ServingAtRolloutZero();
    checks.push_back(Precondition{
        .name = "strategies serving at 0 %",
        .satisfied = true,
        .detail = serving.empty()
                      ? "every active strategy has a rollout parameter, so 0 % serves nobody"
                      : fmt::format("a rollout of 0 % leaves these serving the flag, so the "
                                    "rollback ends partial: {}",
                                    DescribeStrategies(serving))});
  }
  checks.push_back(
      Precondition{.name = "SDK evaluation",
                   .satisfied = true,
                   .detail = settings_.sdk_evaluation.empty()
                                 ? "not configured: readiness reads the Admin API only"
                                 : fmt::format("readiness also evaluates the flag with `{}`",
                                               fmt::join(settings_.sdk_evaluation, " "))});
  return checks;
}

// ---- Planning ---------------------------------------------------------------------------------

core::Result<Plan> UnleashProvider::MakePlan(std::string_view target_version) const {
  std::optional<RollbackState> target =
      target_version.empty() ? std::optional(settings_.rollback) : ParseState(target_version);
  if (!target) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: '{}' is not a state of an Unleash flag; give off, on or "
                           "rollout-0, or no target for the binding's rollback ({})",
                           service_, target_version, RollbackStateName(settings_.rollback));
  }
  if (*target == RollbackState::kRolloutZero && settings_.rollback != RollbackState::kRolloutZero) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: a rollout to 0 % is planned only when the binding sets "
                           "`rollback: rollout-0`; it is not a kill switch, so plan `off` instead",
                           service_);
  }
  auto state = ReadFlag(nullptr);
  if (!state) return std::unexpected(state.error().WithContext("cannot plan the rollback"));

  std::string target_name(RollbackStateName(*target));
  Plan plan;
  plan.provider_kind = "unleash";
  plan.service = service_;
  plan.target_version = target_name;
  plan.action = json{{"url", settings_.url},
                     {"project", settings_.project},
                     {"flag", settings_.flag},
                     {"environment", settings_.environment},
                     {"from_version", state->Version()},
                     {"target_version", target_name},
                     {"dependent_flags", state->children}};
  auto finish = [&](std::string type, std::string summary) {
    plan.action["type"] = type;
    plan.noop = type == "noop";
    plan.digest = PlanDigest(plan.action);
    plan.summary = std::move(summary);
    return plan;
  };
  std::string where = fmt::format("{} in {} (project {})", settings_.flag, settings_.environment,
                                  settings_.project);

  if (Satisfies(state->Version(), *target)) {
    return finish("noop", fmt::format("nothing to do: {} is already {}", where, state->Version()));
  }
  if (*target == RollbackState::kOff) {
    return finish("turn_off", fmt::format("turn {} off (now {})", where, state->Version()));
  }
  if (*target == RollbackState::kOn) {
    return finish("turn_on", fmt::format("turn {} on (now {})", where, state->Version()));
  }

  // A rollout to 0 %: every active strategy with a rollout parameter above 0.
  json strategies = json::array();
  for (const Strategy& strategy : state->RolloutsAboveZero()) {
    strategies.push_back({{"id", strategy.id},
                          {"name", strategy.name},
                          {"parameter", strategy.rollout_parameter},
                          {"from", strategy.rollout}});
  }
  json serving = json::array();
  for (const Strategy& strategy : state->ServingAtRolloutZero()) {
    serving.push_back({{"id", strategy.id}, {"name", strategy.name}});
  }
  plan.action["strategies"] = strategies;
  plan.action["still_serving"] = serving;
  if (strategies.empty()) {
    plan.action["reason"] =
        fmt::format("{} has no gradual rollout strategy to lower; these serve it: {}", where,
                    DescribeStrategies(state->ServingAtRolloutZero()));
    return finish("no_rollback_target",
                  fmt::format("nothing to roll back to 0 %: {}; roll back with `off` instead",
                              ActionText(plan.action, "reason")));
  }
  std::string summary =
      fmt::format("set the rollout of {} strategies of {} to 0 %", strategies.size(), where);
  if (!serving.empty()) {
    summary += fmt::format("; partial: {} still serve it",
                           DescribeStrategies(state->ServingAtRolloutZero()));
  }
  return finish("rollout_zero", std::move(summary));
}

core::Result<void> UnleashProvider::ValidatePlan(const Plan& plan) const {
  if (auto origin = CheckPlanOrigin(plan, "unleash", service_); !origin) {
    return std::unexpected(origin.error());
  }
  if (ActionText(plan.action, "project") != settings_.project ||
      ActionText(plan.action, "flag") != settings_.flag ||
      ActionText(plan.action, "environment") != settings_.environment) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: the plan is for flag {} in {} of project {}, but the "
                           "provider is bound to {} in {} of {}; plan again",
                           service_, ActionText(plan.action, "flag"),
                           ActionText(plan.action, "environment"),
                           ActionText(plan.action, "project"), settings_.flag,
                           settings_.environment, settings_.project);
  }
  return {};
}

// ---- Execution --------------------------------------------------------------------------------

ExecutionResult UnleashProvider::Finish(ExecutionResult& result, const ExecutionContext& context,
                                        RollbackOutcome outcome, std::string message) const {
  result.outcome = outcome;
  result.message = std::move(message);
  result.finished_at = clock_.Now();
  spdlog::info(
      "provider.unleash: service={} incident={} flag={} environment={} outcome={} "
      "message=\"{}\"",
      service_, context.incident_id, settings_.flag, settings_.environment,
      core::RollbackOutcomeName(outcome), result.message);
  return result;
}

core::Result<ExecutionResult> UnleashProvider::Execute(const Plan& plan,
                                                       std::string_view idempotency_key,
                                                       const ExecutionContext& context) const {
  if (auto valid = ValidatePlan(plan); !valid) return std::unexpected(valid.error());
  if (idempotency_key.empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: the idempotency key is empty", service_);
  }
  ExecutionResult result;
  result.target_version = plan.target_version;
  result.from_version = ActionText(plan.action, "from_version");
  result.started_at = clock_.Now();
  std::string type = ActionText(plan.action, "type");
  if (type == "noop") {
    result.live_version = plan.target_version;
    return Finish(result, context, RollbackOutcome::kSkippedNoop, plan.summary);
  }
  if (type == "no_rollback_target") {
    return Finish(result, context, RollbackOutcome::kNoRollbackTarget,
                  ActionText(plan.action, "reason"));
  }
  if (type != "turn_off" && type != "turn_on" && type != "rollout_zero") {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: the plan's action type '{}' is unknown; plan again",
                           service_, type);
  }

  // Step 1: commit the start, with the tag that will mark the change, before touching Unleash.
  std::string tag_value = AuditTagValue(context.incident_id, context.executor);
  json tool{{"type", type}, {"idempotency_key", idempotency_key}};
  if (settings_.audit_tag)
    tool["audit_tag"] = {{"type", settings_.audit_tag_type}, {"value", tag_value}};
  result.started = StartedAction{clock_.Now(), std::nullopt, tool};
  result.details["change_type"] = type;
  if (context.on_started) {
    if (auto recorded = context.on_started(*result.started); !recorded) {
      return Finish(result, context, RollbackOutcome::kFailed,
                    fmt::format("could not record the start, so Unleash was not changed: {}",
                                recorded.error().message));
    }
  }

  // Step 2: the tag. Unleash copies the flag's tags into each event it records, so the change's
  // event names the incident and the executor. A failed tag does not stop the rollback.
  if (settings_.audit_tag) {
    auto tagged = api_->Call(
        http::Method::kPost,
        fmt::format("/api/admin/features/{}/tags", EncodeComponent(settings_.flag)),
        json{{"type", settings_.audit_tag_type}, {"value", tag_value}}, true, &result.transcript);
    if (tagged) {
      result.details["audit_tag"] = tool["audit_tag"];
    } else {
      result.details["audit_tag_error"] = tagged.error().Describe();
      spdlog::warn(
          "provider.unleash: service={} incident={} flag={} could not add the audit tag, "
          "so Unleash's event will not name the incident: {}",
          service_, context.incident_id, settings_.flag, tagged.error().Describe());
    }
  }

  // Step 3: the change itself.
  std::vector<std::string> lowered;
  std::optional<ApiFailure> failure;
  if (type == "turn_off" || type == "turn_on") {
    // Setting the state again is harmless (Unleash records no second event), so it may be retried.
    auto changed =
        api_->Call(http::Method::kPost, EnvironmentPath() + (type == "turn_off" ? "/off" : "/on"),
                   nullptr, true, &result.transcript);
    if (!changed) failure = changed.error();
  } else {
    for (const json& strategy : plan.action.value("strategies", json::array())) {
      std::string parameter = fmt::format("/parameters/{}", strategy.value("parameter", ""));
      // The `test` operation makes Unleash refuse the patch when the rollout moved since the plan.
      json patch =
          json::array({{{"op", "test"}, {"path", parameter}, {"value", strategy.value("from", "")}},
                       {{"op", "replace"}, {"path", parameter}, {"value", "0"}}});
      auto patched = api_->Call(http::Method::kPatch,
                                fmt::format("{}/strategies/{}", EnvironmentPath(),
                                            EncodeComponent(strategy.value("id", ""))),
                                patch, false, &result.transcript);
      if (!patched) {
        failure = patched.error();
        break;
      }
      lowered.push_back(strategy.value("id", ""));
    }
    result.details["lowered_strategies"] = lowered;
  }
  result.details["accepted_at"] = failure ? json(nullptr) : json(core::FormatTime(clock_.Now()));

  if (failure) {
    std::string partly =
        lowered.empty() ? "" : fmt::format(" after lowering {}", fmt::join(lowered, ", "));
    if (failure->NeedsChangeRequest()) {
      return Finish(result, context, RollbackOutcome::kPendingApproval,
                    fmt::format("Unleash requires a change request for {} in {}{}: \"{}\"; create "
                                "and approve it in Unleash, then confirm the rollback",
                                settings_.flag, settings_.environment, partly, failure->message));
    }
    if (failure->IsArchived()) {
      return Finish(result, context, RollbackOutcome::kFailed,
                    fmt::format("flag {} was archived after the plan was made{} (Unleash: {}); "
                                "SDKs now return the fallback value in the calling code",
                                settings_.flag, partly, failure->message));
    }
    if (failure->IsPatchTestFailure()) {
      return Finish(
          result, context,
          lowered.empty() ? RollbackOutcome::kPreconditionFailed : RollbackOutcome::kPartial,
          fmt::format("a strategy's rollout of {} changed since the plan was made{}; "
                      "plan again",
                      settings_.flag, partly));
    }
    if (!failure->transport && failure->status < 500) {
      return Finish(result, context,
                    lowered.empty() ? RollbackOutcome::kFailed : RollbackOutcome::kPartial,
                    fmt::format("Unleash refused the change of {} in {}{}: {}", settings_.flag,
                                settings_.environment, partly, failure->Describe()));
    }
    // No response or a server error: the change may have landed, so read the state.
    result.details["change_error"] = failure->Describe();
  }
  return Conclude(result, plan, context);
}

ExecutionResult UnleashProvider::Conclude(ExecutionResult& result, const Plan& plan,
                                          const ExecutionContext& context) const {
  auto state = ReadFlag(&result.transcript);
  if (!state) {
    return Finish(result, context, RollbackOutcome::kInterrupted,
                  fmt::format("cannot read {} after the change: {}; {}", settings_.flag,
                              state.error().message, kConfirmHint));
  }
  result.live_version = state->Version();
  result.details["state"] = state->ToJson();
  std::optional<RollbackState> target = ParseState(plan.target_version);
  std::string change_error = result.details.value("change_error", "");

  if (!target || !Reached(*state, *target)) {
    return Finish(result, context, RollbackOutcome::kFailed,
                  fmt::format("{} in {} is {} after the change, not {}{}", settings_.flag,
                              settings_.environment, state->Version(), plan.target_version,
                              change_error.empty() ? "; someone may have changed it back"
                                                   : fmt::format(" ({})", change_error)));
  }

  auto event = FindChangeEvent(result, &result.transcript);
  std::string recorded = "Unleash's event was not found";
  if (event && *event) {
    result.details["event"] = (*event)->ToJson();
    recorded = fmt::format("event {} by {} at {}", (*event)->id, (*event)->created_by,
                           FormatOptionalTime((*event)->created_at));
  } else if (!event) {
    recorded = fmt::format("Unleash's event could not be read: {}", event.error().message);
  }

  if (*target == RollbackState::kRolloutZero) {
    std::vector<Strategy> serving = state->ServingAtRolloutZero();
    if (state->enabled && !serving.empty()) {
      return Finish(result, context, RollbackOutcome::kPartial,
                    fmt::format("every rollout of {} in {} is 0 % ({}), but these strategies "
                                "still serve the flag: {}; turn the flag off to stop them",
                                settings_.flag, settings_.environment, recorded,
                                DescribeStrategies(serving)));
    }
  }
  return Finish(result, context, RollbackOutcome::kRolledBack,
                fmt::format("{} is {} in {} ({})", settings_.flag, state->Version(),
                            settings_.environment, recorded));
}

core::Result<ExecutionResult> UnleashProvider::Resume(const ResumeRequest& request,
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

  // The state shows whether the change landed, so Resume never sends it again.
  ExecutionResult result;
  result.target_version = plan.target_version;
  result.from_version = ActionText(plan.action, "from_version");
  result.started_at = request.started ? request.started->started_at : clock_.Now();
  result.started = request.started;
  result.details["change_type"] = type;
  if (request.started && request.started->tool.contains("audit_tag")) {
    result.details["audit_tag"] = request.started->tool["audit_tag"];
  }
  auto state = ReadFlag(&result.transcript);
  if (!state) {
    return Finish(
        result, context, RollbackOutcome::kInterrupted,
        fmt::format("cannot read {}: {}; {}", settings_.flag, state.error().message, kConfirmHint));
  }
  std::optional<RollbackState> target = ParseState(plan.target_version);
  if (target && Reached(*state, *target)) return Conclude(result, plan, context);
  result.live_version = state->Version();
  return Finish(result, context, RollbackOutcome::kFailed,
                fmt::format("{} in {} is still {}: the change never reached Unleash; roll back "
                            "again",
                            settings_.flag, settings_.environment, state->Version()));
}

// ---- Read-back and readiness ------------------------------------------------------------------

core::Result<std::optional<FlagEvent>> UnleashProvider::FindChangeEvent(
    const ExecutionResult& execution, Transcript* transcript) const {
  auto events = ReadEvents("", kReadBackEvents, transcript);
  if (!events) return std::unexpected(events.error());
  json tag = execution.details.value("audit_tag", json());
  std::string target = execution.target_version;

  // Newest first: the first event that reaches the target and carries the tag is the change.
  // Without a tag, the newest event that reaches the target is the record of the state.
  std::optional<FlagEvent> untagged;
  for (const FlagEvent& event : *events) {
    std::string version = event.ResultingVersion();
    bool reaches = version == target || (target == "rollout-0" && version == "off");
    if (!reaches) continue;
    if (tag.is_object() && event.HasTag(tag.value("type", ""), tag.value("value", ""))) {
      return std::optional<FlagEvent>(event);
    }
    if (!untagged) untagged = event;
  }
  return untagged;
}

core::Result<ToolRecord> UnleashProvider::ReadBack(const ExecutionResult& execution) const {
  auto state = ReadFlag(nullptr);
  if (!state) return std::unexpected(state.error().WithContext("cannot read back the rollback"));
  auto event = FindChangeEvent(execution, nullptr);
  if (!event) return std::unexpected(event.error().WithContext("cannot read back the rollback"));

  ToolRecord record;
  record.version = state->Version();
  record.time = clock_.Now();
  record.details = json{{"state", state->ToJson()},
                        {"accepted_at", execution.details.value("accepted_at", json())},
                        {"event", nullptr}};
  if (*event) {
    record.details["event"] = (*event)->ToJson();
    record.details["who"] = (*event)->created_by;
    record.details["when"] = (*event)->ToJson()["created_at"];
    if ((*event)->created_at) record.time = *(*event)->created_at;
    json tag = execution.details.value("audit_tag", json());
    record.details["event_carries_audit_tag"] =
        tag.is_object() && (*event)->HasTag(tag.value("type", ""), tag.value("value", ""));
  }
  if (!settings_.sdk_evaluation.empty()) {
    auto evaluation = EvaluateWithSdk();
    record.details["sdk_evaluation"] =
        evaluation ? json{{"enabled", evaluation->enabled},
                          {"variant", evaluation->variant},
                          {"evaluated_at", core::FormatTime(evaluation->evaluated_at)}}
                   : json{{"error", evaluation.error().message}};
  }
  return record;
}

core::Result<UnleashProvider::SdkEvaluation> UnleashProvider::EvaluateWithSdk() const {
  if (settings_.sdk_evaluation.empty()) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "service {}: no sdk_evaluation command is configured", service_);
  }
  command::ProcessSpec spec;
  spec.argv = settings_.sdk_evaluation;
  json context = json::object();
  if (!settings_.sdk_user_id.empty()) context["userId"] = settings_.sdk_user_id;
  spec.env = {"PATH=/usr/local/bin:/usr/bin:/bin",
              "UNLEASH_URL=" + settings_.url,
              "UNLEASH_SDK_TOKEN=" + settings_.sdk_token,
              "UNLEASH_FLAG=" + settings_.flag,
              "UNLEASH_CONTEXT=" + context.dump(),
              fmt::format("UNLEASH_SDK_TIMEOUT_MS={}", settings_.sdk_timeout.count())};
  spec.output_dir = std::filesystem::temp_directory_path();
  command::ProcessLimits limits;
  limits.timeout = settings_.sdk_timeout + std::chrono::milliseconds(5'000);
  limits.kill_grace = std::chrono::milliseconds(2'000);
  auto run = command::RunProcess(spec, limits, std::stop_token(), nullptr);
  core::Time evaluated_at = clock_.Now();
  if (!run) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "service {}: cannot run the SDK evaluation `{}`: {}", service_,
                           fmt::join(settings_.sdk_evaluation, " "), run.error().message);
  }

  // The token must not reach a message, whatever the command printed.
  auto redact = [this](std::string text) {
    for (size_t at = text.find(settings_.sdk_token);
         !settings_.sdk_token.empty() && at != std::string::npos;
         at = text.find(settings_.sdk_token)) {
      text.replace(at, settings_.sdk_token.size(), "[REDACTED]");
    }
    return text;
  };
  std::string output = run->stdout_output.tail;
  if (!run->exit.Succeeded()) {
    return core::MakeError(
        core::ErrorCode::kUnavailable, "service {}: the SDK evaluation of {} ended with {}{}: {}",
        service_, settings_.flag, run->exit.Describe(), run->timed_out ? " (timed out)" : "",
        redact(run->stderr_output.tail.substr(0, 500)));
  }
  while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
  std::string last_line =
      output.substr(output.rfind('\n') == std::string::npos ? 0 : output.rfind('\n') + 1);
  try {
    json parsed = json::parse(last_line);
    SdkEvaluation evaluation;
    evaluation.enabled = parsed.at("enabled").get<bool>();
    evaluation.variant = parsed.value("variant", json::object()).value("name", "");
    evaluation.evaluated_at = evaluated_at;
    evaluation.output = parsed;
    return evaluation;
  } catch (const json::exception& error) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "service {}: the SDK evaluation printed no result object with a "
                           "boolean `enabled` ({}): {}",
                           service_, error.what(), redact(last_line.substr(0, 300)));
  }
}

core::Result<Readiness> UnleashProvider::CheckReadiness() const {
  auto state = ReadFlag(nullptr);
  if (!state) return std::unexpected(state.error());
  std::string expected(RollbackStateName(settings_.rollback));
  if (!Satisfies(state->Version(), settings_.rollback)) {
    return Readiness{
        false, fmt::format("{} is {} in {}, not {} as the binding's rollback "
                           "expects",
                           settings_.flag, state->Version(), settings_.environment, expected)};
  }

  // When Unleash accepted the state: the newest event that reached it.
  ExecutionResult probe;
  probe.target_version = expected;
  auto event = FindChangeEvent(probe, nullptr);
  std::string accepted = "no event found";
  if (event && *event) {
    accepted = fmt::format("since {} (event {} by {})", FormatOptionalTime((*event)->created_at),
                           (*event)->id, (*event)->created_by);
  }
  std::string message = fmt::format("Unleash reports {} {} in {} {}", settings_.flag,
                                    state->Version(), settings_.environment, accepted);
  if (settings_.sdk_evaluation.empty()) return Readiness{true, message};

  // Clients keep stale values, so an SDK evaluation must show the same state.
  auto evaluation = EvaluateWithSdk();
  if (!evaluation) {
    return Readiness{false, fmt::format("{}, but the SDK evaluation failed: {}", message,
                                        evaluation.error().message)};
  }
  bool expected_enabled = settings_.rollback == RollbackState::kOn;
  std::string seen = fmt::format("the SDK evaluated it at {}: enabled={}, variant {}",
                                 core::FormatTime(evaluation->evaluated_at), evaluation->enabled,
                                 evaluation->variant.empty() ? "none" : evaluation->variant);
  if (evaluation->enabled != expected_enabled) {
    return Readiness{false,
                     fmt::format("{}, but {} (a stale value; try again later)", message, seen)};
  }
  return Readiness{true, fmt::format("{}; {}", message, seen)};
}

}  // namespace backout::providers::unleash
