#include "providers/launchdarkly/launchdarkly_provider.h"

#include <algorithm>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

namespace backout::providers::launchdarkly {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

// Attempts at sending the change: after a 409, a failed version test, a 429 or a lost response.
constexpr int kMaxSendAttempts = 4;
// Wait before a retry when LaunchDarkly names none.
constexpr milliseconds kDefaultRetryWait{500};
// LaunchDarkly returns at most 20 audit log entries per page; History reads at most this many.
constexpr int kAuditPageSize = 20;
constexpr int kMaxAuditPages = 50;
// Dependent flags read one by one to say what each serves once its prerequisite is off.
constexpr size_t kMaxDependentReads = 20;
// How far before the execution started the audit log is searched for its marker, to allow for
// clock skew between Backout and LaunchDarkly.
constexpr auto kAuditSkew = std::chrono::minutes(5);

constexpr std::string_view kConfirmHint =
    "confirm with `backout incident confirm ID --happened|--did-not-happen --reason TEXT`";

std::string ActionText(const json& action, std::string_view field) {
  auto it = action.find(field);
  return it != action.end() && it->is_string() ? it->get<std::string>() : "";
}

int64_t EpochMillis(core::Time time) {
  return std::chrono::duration_cast<milliseconds>(time.time_since_epoch()).count();
}

core::Time TimeFromMillis(int64_t millis) {
  return core::Time(std::chrono::duration_cast<core::Duration>(milliseconds(millis)));
}

std::string FormatMillis(const json& millis) {
  return millis.is_number_integer() ? core::FormatTime(TimeFromMillis(millis.get<int64_t>()))
                                    : "an unknown time";
}

std::string Percent(int weight) {
  if (weight % 1000 == 0) return std::to_string(weight / 1000);
  return fmt::format("{:.3f}", weight / 1000.0);
}

std::string WhoChanged(const json& entry) {
  const json& member = entry.value("member", json::object());
  if (member.is_object() && !member.value("email", "").empty()) return member["email"];
  const json& token = entry.value("token", json::object());
  if (token.is_object() && !token.value("name", "").empty()) {
    return fmt::format("token {}", token["name"].get<std::string>());
  }
  return "";
}

}  // namespace

// ---- Creation ---------------------------------------------------------------------------------

core::Result<std::unique_ptr<Provider>> LaunchDarklyProvider::Create(std::string_view service,
                                                                     const json& settings,
                                                                     const SecretValues& secrets,
                                                                     core::Clock& clock) {
  if (service.empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "launchdarkly provider: the service name is empty");
  }
  auto parsed = ParseLaunchDarklySettings(service, settings, secrets);
  if (!parsed) return std::unexpected(parsed.error());

  ApiClientOptions options{parsed->base_url, parsed->api_token, parsed->api_version,
                           parsed->request_timeout,
                           fmt::format("provider.launchdarkly service={}", service)};
  auto api = ApiClient::Create(std::move(options), clock);
  if (!api) return std::unexpected(api.error().WithContext(fmt::format("service {}", service)));
  return std::unique_ptr<Provider>(
      new LaunchDarklyProvider(std::string(service), std::move(*parsed), std::move(*api), clock));
}

LaunchDarklyProvider::LaunchDarklyProvider(std::string service, LaunchDarklySettings settings,
                                           std::unique_ptr<ApiClient> api, core::Clock& clock)
    : service_(std::move(service)),
      settings_(std::move(settings)),
      api_(std::move(api)),
      clock_(clock) {}

ProviderCapabilities LaunchDarklyProvider::Capabilities() const {
  return ProviderCapabilities{.live_state = true, .history = true, .readiness = true};
}

std::string LaunchDarklyProvider::Marker(std::string_view idempotency_key) {
  return fmt::format("[backout key={}]", idempotency_key);
}

// ---- Reading LaunchDarkly ---------------------------------------------------------------------

std::string LaunchDarklyProvider::FlagPath() const {
  return fmt::format("/flags/{}/{}", settings_.project, settings_.flag);
}

std::string LaunchDarklyProvider::ResourceSpec() const {
  return fmt::format("proj/{}:env/{}:flag/{}", settings_.project, settings_.environment,
                     settings_.flag);
}

core::Result<LaunchDarklyProvider::FlagView> LaunchDarklyProvider::ViewOf(json flag) const {
  FlagView view;
  const json& environments = flag.value("environments", json::object());
  if (!environments.is_object() || !environments.contains(settings_.environment)) {
    return core::MakeError(core::ErrorCode::kNotFound,
                           "service {}: flag {} has no environment '{}' in project {}; check "
                           "`environment` in the provider settings",
                           service_, settings_.flag, settings_.environment, settings_.project);
  }
  view.config = environments[settings_.environment];
  if (!settings_.new_variation.empty()) {
    auto index = ResolveVariation(flag, settings_.new_variation);
    if (!index) {
      return std::unexpected(index.error().WithContext(
          fmt::format("service {}: provider field 'new_variation'", service_)));
    }
    view.new_variation = *index;
  }
  view.flag = std::move(flag);
  return view;
}

core::Result<LaunchDarklyProvider::FlagView> LaunchDarklyProvider::ReadFlag(
    Transcript* transcript) const {
  auto flag = api_->Get(FlagPath(), {{"env", settings_.environment}}, transcript);
  if (!flag) {
    return std::unexpected(flag.error().ToError(fmt::format(
        "read of flag {}/{} for service {}", settings_.project, settings_.flag, service_)));
  }
  return ViewOf(std::move(*flag));
}

core::Result<json> LaunchDarklyProvider::ReadDependents(Transcript* transcript) const {
  auto listing = api_->Get(fmt::format("/flags/{}/{}/{}/dependent-flags", settings_.project,
                                       settings_.environment, settings_.flag),
                           {}, transcript);
  if (!listing) {
    return std::unexpected(listing.error().ToError(
        fmt::format("list of flags depending on {} for service {}", settings_.flag, service_)));
  }
  json dependents = json::array();
  for (const json& item : listing->value("items", json::array())) {
    std::string key = item.value("key", "");
    json dependent{{"key", key}, {"name", item.value("name", key)}};
    if (dependents.size() < kMaxDependentReads) {
      auto flag = api_->Get(fmt::format("/flags/{}/{}", settings_.project, key),
                            {{"env", settings_.environment}}, transcript);
      if (flag) {
        json config = flag->value("environments", json::object())
                          .value(settings_.environment, json::object());
        dependent["on"] = config.value("on", false);
        dependent["off_serves"] =
            DescribeOff(*flag, config, std::nullopt, std::nullopt).description;
      }
    }
    dependents.push_back(std::move(dependent));
  }
  return dependents;
}

core::Result<std::optional<json>> LaunchDarklyProvider::FindAuditEntry(
    const std::string& marker, core::Time since, Transcript* transcript) const {
  std::map<std::string, std::string> query{
      {"spec", ResourceSpec()},
      {"q", marker},
      {"after", std::to_string(EpochMillis(since - kAuditSkew))},
      {"limit", std::to_string(kAuditPageSize)}};
  auto listing = api_->Get("/auditlog", query, transcript);
  if (!listing) {
    return std::unexpected(listing.error().ToError(
        fmt::format("audit log search for {} of flag {}", marker, settings_.flag)));
  }
  for (const json& item : listing->value("items", json::array())) {
    if (item.value("comment", "").find(marker) == std::string::npos) continue;
    auto entry = api_->Get(fmt::format("/auditlog/{}", item.value("_id", "")), {}, transcript);
    if (!entry) {
      return std::unexpected(
          entry.error().ToError(fmt::format("read of audit log entry {}", item.value("_id", ""))));
    }
    return std::optional<json>(*entry);
  }
  return std::optional<json>();
}

std::string LaunchDarklyProvider::VersionOf(const FlagView& view) const {
  std::string state = TargetingState(view.config);
  if (state == "off" || settings_.action != FlagAction::kRolloutToZero || !view.new_variation) {
    return state;
  }
  return fmt::format(
      "rollout:{}",
      Percent(WeightOf(view.config.value("fallthrough", json::object()), *view.new_variation)));
}

json LaunchDarklyProvider::DescribeLive(const FlagView& view) const {
  OffServes off = DescribeOff(view.flag, view.config, view.new_variation, settings_.sdk_fallback);
  json details{{"source", "LaunchDarkly"},
               {"project", settings_.project},
               {"environment", settings_.environment},
               {"flag", settings_.flag},
               {"on", view.config.value("on", false)},
               {"archived", view.flag.value("archived", false)},
               {"flag_version", view.flag.value("_version", 0)},
               {"environment_version", view.config.value("version", 0)},
               {"last_modified", FormatMillis(view.config.value("lastModified", json()))},
               {"fallthrough", view.config.value("fallthrough", json())},
               {"prerequisites", view.config.value("prerequisites", json::array())},
               {"off_serves", off.ToJson()}};
  if (view.new_variation) {
    details["new_variation"] = *view.new_variation;
    details["new_variation_served_by"] =
        FindNewVariationUse(view.config, *view.new_variation).ToJson();
  }
  return details;
}

bool LaunchDarklyProvider::InTargetState(const FlagView& view, const std::string& type) const {
  if (!view.config.value("on", false)) return true;
  if (type != "rollout_to_zero" || !view.new_variation) return false;
  return WeightOf(view.config.value("fallthrough", json::object()), *view.new_variation) == 0;
}

// ---- Provider reads ---------------------------------------------------------------------------

core::Result<LiveState> LaunchDarklyProvider::ReadLiveState() const {
  auto view = ReadFlag(nullptr);
  if (!view) return std::unexpected(view.error());
  return LiveState{VersionOf(*view), clock_.Now(), DescribeLive(*view)};
}

core::Result<std::vector<HistoryEntry>> LaunchDarklyProvider::History(core::Time since) const {
  std::vector<json> items;
  std::map<std::string, std::string> query{{"spec", ResourceSpec()},
                                           {"after", std::to_string(EpochMillis(since) - 1)},
                                           {"limit", std::to_string(kAuditPageSize)}};
  for (int page = 0; page < kMaxAuditPages; ++page) {
    auto listing = api_->Get("/auditlog", query, nullptr);
    if (!listing) {
      return std::unexpected(listing.error().ToError(
          fmt::format("audit log read of flag {} for service {}", settings_.flag, service_)));
    }
    const json& page_items = listing->value("items", json::array());
    for (const json& item : page_items) items.push_back(item);
    if (page_items.size() < static_cast<size_t>(kAuditPageSize)) break;
    // NOTE: Paging by `before` skips an entry that shares its millisecond with the last one of
    // the previous page.
    query["before"] = std::to_string(page_items.back().value("date", int64_t{0}));
    if (page == kMaxAuditPages - 1) {
      spdlog::warn(
          "provider.launchdarkly: service={} audit log has more than {} entries since {}; "
          "reading only the newest",
          service_, kMaxAuditPages * kAuditPageSize, core::FormatTime(since));
    }
  }
  std::reverse(items.begin(), items.end());

  std::optional<size_t> new_variation;
  std::vector<HistoryEntry> entries;
  for (const json& item : items) {
    std::vector<std::string> actions;
    for (const json& access : item.value("accesses", json::array())) {
      actions.push_back(access.value("action", ""));
    }
    auto has = [&actions](std::string_view action) {
      return std::find(actions.begin(), actions.end(), action) != actions.end();
    };

    HistoryEntry entry;
    entry.time = TimeFromMillis(item.value("date", int64_t{0}));
    entry.actor = WhoChanged(item);
    std::string comment = item.value("comment", "");
    entry.details = json{{"audit_entry_id", item.value("_id", "")},
                         {"actions", actions},
                         {"comment", comment},
                         {"title", item.value("title", "")},
                         {"description", item.value("description", "")},
                         {"made_by_backout", comment.find("[backout key=") != std::string::npos}};
    entry.version = "on";

    // The listing has no flag state; the entry itself has the flag before and after.
    if (has("updateOn") || has("updateFallthrough")) {
      auto detail = api_->Get(fmt::format("/auditlog/{}", item.value("_id", "")), {}, nullptr);
      if (!detail) {
        return std::unexpected(detail.error().ToError(
            fmt::format("read of audit log entry {}", item.value("_id", ""))));
      }
      json before_flag = detail->value("previousVersion", json::object());
      json after_flag = detail->value("currentVersion", json::object());
      auto before = ViewOf(before_flag);
      auto after = ViewOf(after_flag);
      if (after) {
        entry.version = VersionOf(*after);
        new_variation = after->new_variation;
      }
      bool turned_off =
          before && after && before->config.value("on", false) && !after->config.value("on", false);
      bool rolled_to_zero =
          before && after && new_variation &&
          WeightOf(before->config.value("fallthrough", json::object()), *new_variation) > 0 &&
          WeightOf(after->config.value("fallthrough", json::object()), *new_variation) == 0;
      if (turned_off || rolled_to_zero) {
        entry.kind = HistoryKind::kRollback;
        entry.details["rollback_reason"] =
            turned_off ? "the flag was turned off" : "the new variation's rollout went to 0 %";
      }
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

core::Result<std::vector<Precondition>> LaunchDarklyProvider::Preconditions() const {
  std::vector<Precondition> checks;
  auto view = ReadFlag(nullptr);
  checks.push_back(Precondition{
      .name = "flag readable",
      .satisfied = view.has_value(),
      .detail = view ? fmt::format("{}/{} in {} is {} (environment version {}, changed {})",
                                   settings_.project, settings_.flag, settings_.environment,
                                   TargetingState(view->config), view->config.value("version", 0),
                                   FormatMillis(view->config.value("lastModified", json())))
                     : view.error().message});
  if (!view) return checks;

  bool archived = view->flag.value("archived", false);
  checks.push_back(Precondition{
      .name = "flag not archived",
      .satisfied = !archived,
      .detail = archived ? "the flag is archived, so LaunchDarkly rejects changes to it; restore "
                           "it first"
                         : "the flag is live"});

  OffServes off =
      DescribeOff(view->flag, view->config, view->new_variation, settings_.sdk_fallback);
  checks.push_back(Precondition{.name = "what off serves",
                                .satisfied = off.value_known && !off.serves_new,
                                .detail = off.description});

  auto dependents = ReadDependents(nullptr);
  Precondition dependent_check{
      .name = "dependent flags", .satisfied = dependents.has_value(), .detail = ""};
  if (!dependents) {
    dependent_check.detail = dependents.error().message;
  } else if (dependents->empty()) {
    dependent_check.detail = fmt::format("no flag uses {} as a prerequisite in {}", settings_.flag,
                                         settings_.environment);
  } else {
    std::vector<std::string> names;
    for (const json& dependent : *dependents) {
      names.push_back(dependent.contains("off_serves")
                          ? fmt::format("{} ({})", dependent["key"].get<std::string>(),
                                        dependent["off_serves"].get<std::string>())
                          : dependent["key"].get<std::string>());
    }
    dependent_check.detail = fmt::format(
        "turning {} off fails the prerequisite of {} flag(s), which then serve their own off "
        "variation to everyone: {}",
        settings_.flag, dependents->size(), fmt::join(names, "; "));
  }
  checks.push_back(std::move(dependent_check));

  if (settings_.action == FlagAction::kRolloutToZero && view->new_variation) {
    NewVariationUse use = FindNewVariationUse(view->config, *view->new_variation);
    checks.push_back(Precondition{
        .name = "new variation only in the default rule",
        .satisfied = !use.ServedBeyondDefaultRule(),
        .detail = use.ServedBeyondDefaultRule()
                      ? fmt::format("a rollout to 0 % leaves the new variation served by {}, so "
                                    "its outcome would be partial; turning the flag off stops all "
                                    "of them",
                                    fmt::join(use.targets.empty() ? use.rules : use.targets, "; "))
                      : "no individual target or rule serves the new variation"});
  }
  return checks;
}

core::Result<Readiness> LaunchDarklyProvider::CheckReadiness() const {
  auto view = ReadFlag(nullptr);
  if (!view) return std::unexpected(view.error());
  json last_modified = view->config.value("lastModified", json());
  std::string changed = FormatMillis(last_modified);

  if (view->config.value("on", false)) {
    if (settings_.action != FlagAction::kRolloutToZero || !view->new_variation) {
      // A flag's configuration does not change by itself, so waiting longer is pointless.
      return Readiness{false,
                       fmt::format("flag {} is on in {} (changed {})", settings_.flag,
                                   settings_.environment, changed),
                       /*failed=*/true};
    }
    NewVariationUse use = FindNewVariationUse(view->config, *view->new_variation);
    if (use.ServedAnywhere()) {
      return Readiness{false,
                       fmt::format("flag {} in {} still serves the new variation through "
                                   "{} (changed {})",
                                   settings_.flag, settings_.environment, use.Describe(), changed),
                       /*failed=*/true};
    }
  }

  // LaunchDarkly accepted the change at lastModified; SDKs and relays may serve their cached
  // value until the update reaches them.
  if (settings_.propagation_grace.count() > 0 && last_modified.is_number_integer()) {
    core::Time accepted = TimeFromMillis(last_modified.get<int64_t>());
    core::Time settled =
        accepted + std::chrono::duration_cast<core::Duration>(settings_.propagation_grace);
    if (clock_.Now() < settled) {
      return Readiness{false, fmt::format("LaunchDarkly accepted the change at {}; clients may "
                                          "keep their cached value until {} (propagation_grace)",
                                          changed, core::FormatTime(settled))};
    }
  }
  OffServes off =
      DescribeOff(view->flag, view->config, view->new_variation, settings_.sdk_fallback);
  return Readiness{
      true,
      fmt::format("flag {} is {} in {} since {}{}", settings_.flag, VersionOf(*view),
                  settings_.environment, changed,
                  view->config.value("on", false) ? "" : fmt::format("; {}", off.description))};
}

core::Result<ToolRecord> LaunchDarklyProvider::ReadBack(const ExecutionResult& execution) const {
  std::string entry_id = execution.details.value("audit_entry_id", "");
  std::string marker = execution.details.value("marker", "");
  std::optional<json> entry;
  if (!entry_id.empty()) {
    auto read = api_->Get(fmt::format("/auditlog/{}", entry_id), {}, nullptr);
    if (!read) {
      return std::unexpected(
          read.error().ToError(fmt::format("read back of audit entry {}", entry_id)));
    }
    entry = *read;
  } else if (!marker.empty() && (execution.outcome == RollbackOutcome::kRolledBack ||
                                 execution.outcome == RollbackOutcome::kPartial)) {
    auto found = FindAuditEntry(marker, execution.started_at, nullptr);
    if (!found) return std::unexpected(found.error().WithContext("cannot read back the rollback"));
    if (!*found) {
      return core::MakeError(core::ErrorCode::kNotFound,
                             "service {}: LaunchDarkly's audit log has no entry for flag {} in {} "
                             "whose comment carries {}; check the flag's history in LaunchDarkly",
                             service_, settings_.flag, settings_.environment, marker);
    }
    entry = std::move(*found);
  }

  if (!entry) {
    auto live = ReadLiveState();
    if (!live) return std::unexpected(live.error().WithContext("cannot read back the rollback"));
    return ToolRecord{live->observed_at, live->version, live->details};
  }
  auto after = ViewOf(entry->value("currentVersion", json::object()));
  json details{{"source", "LaunchDarkly audit log"},
               {"audit_entry_id", entry->value("_id", "")},
               {"date", FormatMillis(entry->value("date", json()))},
               {"comment", entry->value("comment", "")},
               {"changed_by", WhoChanged(*entry)},
               {"member", entry->value("member", json())},
               {"token", entry->value("token", json())},
               {"accesses", entry->value("accesses", json::array())},
               {"title", entry->value("title", "")},
               {"description", entry->value("description", "")}};
  if (auto before = ViewOf(entry->value("previousVersion", json::object()))) {
    details["before"] = VersionOf(*before);
  }
  std::string version = after ? VersionOf(*after) : "";
  details["matches_target"] = version == execution.target_version;
  return ToolRecord{TimeFromMillis(entry->value("date", int64_t{0})), version, details};
}

// ---- Planning ---------------------------------------------------------------------------------

core::Result<json> LaunchDarklyProvider::RolloutChange(const FlagView& view) const {
  size_t new_index = *view.new_variation;
  std::optional<size_t> safe_index;
  if (!settings_.safe_variation.empty()) {
    auto resolved = ResolveVariation(view.flag, settings_.safe_variation);
    if (!resolved) {
      return std::unexpected(resolved.error().WithContext(
          fmt::format("service {}: provider field 'safe_variation'", service_)));
    }
    safe_index = *resolved;
  } else if (view.config.value("offVariation", json()).is_number_integer()) {
    safe_index = view.config["offVariation"].get<size_t>();
  }
  if (!safe_index || *safe_index == new_index) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "service {}: a rollout to 0 % needs a variation other than the new one "
                           "to take its share; set safe_variation in the binding",
                           service_);
  }

  // The default rule keeps its other weights; the new variation's share moves to the safe one.
  const json& variations = view.flag["variations"];
  json fallthrough = view.config.value("fallthrough", json::object());
  json instruction{{"kind", "updateFallthroughVariationOrRollout"}};
  json new_fallthrough;
  if (fallthrough.contains("rollout")) {
    std::map<size_t, int> weights;
    for (const json& weighted : fallthrough["rollout"].value("variations", json::array())) {
      weights[weighted.value("variation", size_t{0})] += weighted.value("weight", 0);
    }
    weights[*safe_index] += weights[new_index];
    weights[new_index] = 0;
    json by_id = json::object();
    json rollout_variations = json::array();
    for (const auto& [index, weight] : weights) {
      by_id[variations[index].value("_id", "")] = weight;
      rollout_variations.push_back({{"variation", index}, {"weight", weight}});
    }
    instruction["rolloutWeights"] = by_id;
    instruction["rolloutContextKind"] = fallthrough["rollout"].value("contextKind", "user");
    if (fallthrough["rollout"].contains("bucketBy")) {
      instruction["rolloutBucketBy"] = fallthrough["rollout"]["bucketBy"];
    }
    new_fallthrough = fallthrough;
    new_fallthrough["rollout"]["variations"] = rollout_variations;
  } else {
    instruction["variationId"] = variations[*safe_index].value("_id", "");
    new_fallthrough = json{{"variation", *safe_index}};
  }
  return json{{"instructions", {instruction}},
              {"fallthrough", new_fallthrough},
              {"safe_variation", *safe_index}};
}

core::Result<Plan> LaunchDarklyProvider::MakePlan(std::string_view target_version) const {
  // Step 1: the target names the action.
  std::string type;
  if (target_version == "off" ||
      (target_version.empty() && settings_.action == FlagAction::kTurnOff)) {
    type = "turn_off";
  } else if (target_version == "rollout:0" ||
             (target_version.empty() && settings_.action == FlagAction::kRolloutToZero)) {
    if (settings_.action != FlagAction::kRolloutToZero) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "service {}: a rollout to 0 % is offered only when the binding sets "
                             "`action: rollout_to_zero`; the kill switch is target `off`",
                             service_);
    }
    type = "rollout_to_zero";
  } else {
    return core::MakeError(core::ErrorCode::kNotFound,
                           "service {}: '{}' is not a state flag {} can be rolled back to; give "
                           "`off`{}",
                           service_, target_version, settings_.flag,
                           settings_.action == FlagAction::kRolloutToZero ? " or `rollout:0`" : "");
  }

  // Step 2: the flag as it is now, and what the change would do to it.
  auto view = ReadFlag(nullptr);
  if (!view) return std::unexpected(view.error().WithContext("cannot plan the rollback"));
  auto dependents = ReadDependents(nullptr);
  if (!dependents)
    return std::unexpected(dependents.error().WithContext("cannot plan the rollback"));
  OffServes off =
      DescribeOff(view->flag, view->config, view->new_variation, settings_.sdk_fallback);

  Plan plan;
  plan.provider_kind = "launchdarkly";
  plan.service = service_;
  plan.target_version = type == "turn_off" ? "off" : "rollout:0";
  json action{{"project", settings_.project},
              {"environment", settings_.environment},
              {"flag", settings_.flag},
              {"base_url", settings_.base_url},
              {"patch_format",
               settings_.patch_format == PatchFormat::kSemantic ? "semantic" : "json_patch"},
              {"ignore_conflicts", settings_.ignore_conflicts},
              {"from_version", VersionOf(*view)},
              {"off_serves", off.ToJson()},
              {"dependent_flags", *dependents}};
  if (view->new_variation) action["new_variation"] = *view->new_variation;
  std::string dependents_note =
      dependents->empty() ? ""
                          : fmt::format("; {} dependent flag(s) then serve their off variation",
                                        dependents->size());
  auto finish = [&](std::string final_type, std::string summary) {
    action["type"] = final_type;
    plan.noop = final_type == "noop";
    plan.action = action;
    plan.digest = PlanDigest(plan.action);
    plan.summary = std::move(summary);
    return plan;
  };

  // Step 3: a kill switch that serves the new behaviour rolls nothing back.
  if (off.serves_new) {
    action["reason"] = off.description;
    return finish("no_rollback_target",
                  fmt::format("nothing to roll back to: {} in {}: {}", settings_.flag,
                              settings_.environment, off.description));
  }
  if (InTargetState(*view, type)) {
    return finish("noop", fmt::format("nothing to do: flag {} is already {} in {}", settings_.flag,
                                      VersionOf(*view), settings_.environment));
  }

  if (type == "turn_off") {
    action["instructions"] = json::array({{{"kind", "turnFlagOff"}}});
    return finish("turn_off", fmt::format("turn flag {} off in {} ({}/{}); {}{}", settings_.flag,
                                          settings_.environment, settings_.project, settings_.flag,
                                          off.description, dependents_note));
  }

  if (!view->new_variation) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: rollout_to_zero needs new_variation in the binding",
                           service_);
  }
  auto change = RolloutChange(*view);
  if (!change) return std::unexpected(change.error());
  action.update(*change);
  NewVariationUse use = FindNewVariationUse(view->config, *view->new_variation);
  action["still_served_by"] = use.ToJson();
  use.fallthrough_weight = 0;
  return finish("rollout_to_zero",
                fmt::format("lower the default rule's share of variation {} of flag {} in {} to "
                            "0 %{}",
                            *view->new_variation, settings_.flag, settings_.environment,
                            use.ServedBeyondDefaultRule()
                                ? fmt::format(" (partial: still served by {})", use.Describe())
                                : ""));
}

core::Result<void> LaunchDarklyProvider::ValidatePlan(const Plan& plan) const {
  if (auto origin = CheckPlanOrigin(plan, "launchdarkly", service_); !origin) {
    return std::unexpected(origin.error());
  }
  if (ActionText(plan.action, "project") != settings_.project ||
      ActionText(plan.action, "environment") != settings_.environment ||
      ActionText(plan.action, "flag") != settings_.flag) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: the plan is for flag {}/{} in {}, but the provider is "
                           "configured for {}/{} in {}; plan again",
                           service_, ActionText(plan.action, "project"),
                           ActionText(plan.action, "flag"), ActionText(plan.action, "environment"),
                           settings_.project, settings_.flag, settings_.environment);
  }
  return {};
}

// ---- Execution --------------------------------------------------------------------------------

ExecutionResult LaunchDarklyProvider::Finish(Run& run, RollbackOutcome outcome,
                                             std::string message) const {
  run.result.outcome = outcome;
  run.result.message = std::move(message);
  run.result.finished_at = clock_.Now();
  spdlog::info(
      "provider.launchdarkly: service={} incident={} flag={} environment={} outcome={} "
      "message=\"{}\"",
      service_, run.context.incident_id, settings_.flag, settings_.environment,
      core::RollbackOutcomeName(outcome), run.result.message);
  return run.result;
}

bool LaunchDarklyProvider::Sleep(milliseconds delay, const std::stop_token& stop) const {
  constexpr milliseconds kSlice{20};
  while (delay.count() > 0) {
    if (stop.stop_requested()) return false;
    milliseconds step = std::min(delay, kSlice);
    std::this_thread::sleep_for(step);
    delay -= step;
  }
  return !stop.stop_requested();
}

bool LaunchDarklyProvider::RecordStart(Run& run) const {
  StartedAction started{clock_.Now(), std::nullopt,
                        json{{"marker", Marker(run.key)},
                             {"flag", settings_.flag},
                             {"environment", settings_.environment}}};
  run.result.started = started;
  if (!run.context.on_started) return true;
  auto recorded = run.context.on_started(started);
  if (!recorded) {
    spdlog::warn("provider.launchdarkly: service={} incident={} could not record the start: {}",
                 service_, run.context.incident_id, recorded.error().message);
    return false;
  }
  return true;
}

std::string LaunchDarklyProvider::Comment(const Run& run) const {
  std::string approver = run.context.approver.empty()
                             ? "no approver yet (break-glass)"
                             : fmt::format("approved by {}", run.context.approver);
  return fmt::format("Backout rollback of service {} for incident {}: executed by {}, {} {}",
                     service_, run.context.incident_id, run.context.executor, approver,
                     Marker(run.key));
}

json LaunchDarklyProvider::ChangeBody(const Run& run, const FlagView& fresh) const {
  const json& action = run.plan.action;
  if (settings_.patch_format == PatchFormat::kSemantic) {
    return json{{"environmentKey", settings_.environment},
                {"comment", Comment(run)},
                {"instructions", action.value("instructions", json::array())}};
  }
  // A JSON patch sets a value, so it is guarded by the environment's version: a change made in
  // between fails the test instead of being overwritten.
  std::string base = fmt::format("/environments/{}", settings_.environment);
  json patch = json::array(
      {{{"op", "test"}, {"path", base + "/version"}, {"value", fresh.config.value("version", 0)}}});
  if (ActionText(action, "type") == "turn_off") {
    patch.push_back({{"op", "replace"}, {"path", base + "/on"}, {"value", false}});
  } else {
    patch.push_back(
        {{"op", "replace"}, {"path", base + "/fallthrough"}, {"value", action["fallthrough"]}});
  }
  return json{{"comment", Comment(run)}, {"patch", patch}};
}

core::Result<ExecutionResult> LaunchDarklyProvider::Execute(const Plan& plan,
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
  result.details = json{{"project", settings_.project},
                        {"environment", settings_.environment},
                        {"flag", settings_.flag},
                        {"marker", Marker(idempotency_key)}};
  Run run{plan, std::string(idempotency_key), context, result,
          clock_.Now() + std::chrono::duration_cast<core::Duration>(settings_.timeout)};
  std::string type = ActionText(plan.action, "type");

  if (type == "no_rollback_target") {
    return Finish(run, RollbackOutcome::kNoRollbackTarget, ActionText(plan.action, "reason"));
  }

  // Step 1: the flag now. A flag already in the target state needs no change, and a changed
  // off variation invalidates what the approver saw.
  auto fresh = ReadFlag(&result.transcript);
  if (!fresh) {
    return Finish(run, RollbackOutcome::kFailed,
                  fmt::format("nothing was changed: {}", fresh.error().message));
  }
  result.live_version = VersionOf(*fresh);
  if (InTargetState(*fresh, type)) {
    result.details.update(DescribeLive(*fresh));
    return Finish(run, RollbackOutcome::kSkippedNoop,
                  fmt::format("flag {} is already {} in {} (changed {})", settings_.flag,
                              VersionOf(*fresh), settings_.environment,
                              FormatMillis(fresh->config.value("lastModified", json()))));
  }
  if (type == "noop") {
    return Finish(run, RollbackOutcome::kPreconditionFailed,
                  fmt::format("the plan found flag {} already rolled back, but it is {} now; "
                              "plan again",
                              settings_.flag, VersionOf(*fresh)));
  }
  json off_now =
      DescribeOff(fresh->flag, fresh->config, fresh->new_variation, settings_.sdk_fallback)
          .ToJson();
  if (off_now != plan.action.value("off_serves", json())) {
    return Finish(run, RollbackOutcome::kPreconditionFailed,
                  fmt::format("what flag {} serves when off changed since the plan was approved "
                              "(now: {}); plan and decide again",
                              settings_.flag, off_now.value("description", "")));
  }

  // Step 2: commit the intent, then send the change.
  if (!RecordStart(run)) {
    return Finish(run, RollbackOutcome::kFailed,
                  "could not record the start of the rollback, so the change was not sent");
  }
  return SendChange(run, std::move(*fresh));
}

ExecutionResult LaunchDarklyProvider::SendChange(Run& run, FlagView first_read) const {
  Transcript& transcript = run.result.transcript;
  std::map<std::string, std::string> query;
  if (settings_.ignore_conflicts) query["ignoreConflicts"] = "true";
  bool semantic = settings_.patch_format == PatchFormat::kSemantic;
  std::string type = ActionText(run.plan.action, "type");

  core::Result<FlagView> fresh = std::move(first_read);
  std::string last_failure;
  for (int attempt = 1; attempt <= kMaxSendAttempts; ++attempt) {
    if (!fresh) {
      return Finish(run, RollbackOutcome::kInterrupted,
                    fmt::format("cannot read flag {} to tell whether the change landed: {}; {}",
                                settings_.flag, fresh.error().message, kConfirmHint));
    }
    auto response = api_->Patch(FlagPath(), query, ChangeBody(run, *fresh), semantic, &transcript);
    if (response) {
      auto after = ViewOf(std::move(*response));
      if (!after) return Finish(run, RollbackOutcome::kFailed, after.error().message);
      return Conclude(run, *after);
    }
    const ApiFailure& failure = response.error();
    last_failure = failure.Describe();
    spdlog::warn("provider.launchdarkly: service={} incident={} flag={} attempt {}: {}", service_,
                 run.context.incident_id, settings_.flag, attempt, last_failure);

    // An approval-gated environment never takes the change directly.
    if (failure.status == 405) {
      run.result.details["launchdarkly_message"] = failure.message;
      return Finish(run, RollbackOutcome::kPendingApproval,
                    fmt::format("LaunchDarkly requires an approval for this change in {}: \"{}\". "
                                "Request the change in LaunchDarkly (its comment should name the "
                                "incident), have it approved and applied, then {}",
                                settings_.environment, failure.message, kConfirmHint));
    }

    // A concurrent change or a failed version test: read again and retry on the new state.
    bool lost_race = failure.status == 409 || (!semantic && failure.code == "patch_failed");
    // A lost response: the change may have landed, which the audit log shows.
    bool unknown = failure.MayHaveApplied();
    if (lost_race || unknown) {
      fresh = ReadFlag(&transcript);
      if (fresh && unknown) {
        auto found = FindAuditEntry(Marker(run.key), run.result.started_at, &transcript);
        if (!found) {
          return Finish(run, RollbackOutcome::kInterrupted,
                        fmt::format("no answer to the change ({}), and the audit log cannot be "
                                    "read: {}; {}",
                                    last_failure, found.error().message, kConfirmHint));
        }
        if (*found) {
          run.result.details["audit_entry_id"] = (**found).value("_id", "");
          return Conclude(run, *fresh, "the change landed although its response was lost; ");
        }
      }
      if (fresh && InTargetState(*fresh, type)) {
        return Conclude(run, *fresh, "someone else made the same change first; ");
      }
      if (run.context.stop.stop_requested()) break;
      continue;
    }

    // Rate limited: the change was not applied, so wait as asked and send it again.
    if (failure.status == 429) {
      milliseconds wait = failure.retry_after.value_or(kDefaultRetryWait * attempt);
      if (wait > settings_.max_retry_wait ||
          clock_.Now() + std::chrono::duration_cast<core::Duration>(wait) > run.deadline) {
        return Finish(run, RollbackOutcome::kFailed,
                      fmt::format("LaunchDarkly rate-limited the change and asked to wait {} ms, "
                                  "longer than max_retry_wait or the timeout allow; nothing was "
                                  "changed, roll back again later",
                                  wait.count()));
      }
      if (!Sleep(wait, run.context.stop)) break;
      continue;
    }

    std::string advice;
    if (failure.status == 400 && !settings_.ignore_conflicts) {
      advice =
          "; if it conflicts with a pending scheduled change or approval request, resolve "
          "that in LaunchDarkly or set ignore_conflicts: true";
    }
    return Finish(run, RollbackOutcome::kFailed,
                  fmt::format("LaunchDarkly rejected the change to flag {} in {}: {}{}",
                              settings_.flag, settings_.environment, last_failure, advice));
  }
  if (run.context.stop.stop_requested()) {
    return Finish(run, RollbackOutcome::kFailed,
                  fmt::format("stopped on request; the last attempt failed: {}", last_failure));
  }
  return Finish(run, RollbackOutcome::kFailed,
                fmt::format("gave up after {} attempts; the last failed: {}", kMaxSendAttempts,
                            last_failure));
}

ExecutionResult LaunchDarklyProvider::Conclude(Run& run, const FlagView& view,
                                               std::string prefix) const {
  run.result.live_version = VersionOf(view);
  run.result.details.update(DescribeLive(view));
  // The time LaunchDarkly accepted the change is not the time clients see it: SDKs and relays
  // keep their cached value until the update reaches them.
  json accepted = view.config.value("lastModified", json());
  run.result.details["accepted_at"] = FormatMillis(accepted);
  std::string settle =
      "clients may keep their cached value for a while, so validate the effect with an "
      "evaluation or the service's own checks";

  std::string type = ActionText(run.plan.action, "type");
  if (type == "turn_off") {
    if (view.config.value("on", false)) {
      return Finish(run, RollbackOutcome::kFailed,
                    fmt::format("{}LaunchDarkly answered, but flag {} is still on in {}", prefix,
                                settings_.flag, settings_.environment));
    }
    OffServes off = DescribeOff(view.flag, view.config, view.new_variation, settings_.sdk_fallback);
    return Finish(
        run, RollbackOutcome::kRolledBack,
        fmt::format("{}flag {} turned off in {}, accepted at {}; {}; {}", prefix, settings_.flag,
                    settings_.environment, FormatMillis(accepted), off.description, settle));
  }

  NewVariationUse use = FindNewVariationUse(view.config, view.new_variation.value_or(0));
  run.result.details["new_variation_served_by"] = use.ToJson();
  if (!view.config.value("on", false)) {
    return Finish(run, RollbackOutcome::kRolledBack,
                  fmt::format("{}flag {} is off in {}, so no context gets the new variation",
                              prefix, settings_.flag, settings_.environment));
  }
  if (use.fallthrough_weight > 0) {
    return Finish(run, RollbackOutcome::kFailed,
                  fmt::format("{}LaunchDarkly answered, but the default rule still serves {} % of "
                              "the new variation",
                              prefix, Percent(use.fallthrough_weight)));
  }
  if (use.ServedBeyondDefaultRule()) {
    return Finish(run, RollbackOutcome::kPartial,
                  fmt::format("{}the default rule of flag {} in {} serves 0 % of the new variation "
                              "(accepted at {}), but these still serve it: {}; turn the flag off "
                              "to stop them all",
                              prefix, settings_.flag, settings_.environment, FormatMillis(accepted),
                              use.Describe()));
  }
  return Finish(
      run, RollbackOutcome::kRolledBack,
      fmt::format("{}the default rule of flag {} in {} serves 0 % of the new variation "
                  "and nothing else serves it, accepted at {}; {}",
                  prefix, settings_.flag, settings_.environment, FormatMillis(accepted), settle));
}

core::Result<ExecutionResult> LaunchDarklyProvider::Resume(const ResumeRequest& request,
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
  result.details = json{{"project", settings_.project},
                        {"environment", settings_.environment},
                        {"flag", settings_.flag},
                        {"marker", Marker(request.idempotency_key)}};
  Run run{plan, request.idempotency_key, context, result, clock_.Now()};

  // The marker in the audit log shows whether the change landed, and the change is never sent
  // again here.
  // NOTE: This assumes LaunchDarkly writes the audit entry together with the change. An entry
  // written later would make a landed change look lost; the flag's state is checked too.
  if (request.idempotency_key.empty()) {
    return Finish(run, RollbackOutcome::kInterrupted,
                  fmt::format("no idempotency key was stored, so Backout cannot look for the "
                              "change in LaunchDarkly's audit log; {}",
                              kConfirmHint));
  }
  auto view = ReadFlag(&result.transcript);
  if (!view) {
    return Finish(run, RollbackOutcome::kInterrupted,
                  fmt::format("cannot read flag {}: {}; {}", settings_.flag, view.error().message,
                              kConfirmHint));
  }
  auto found =
      FindAuditEntry(Marker(request.idempotency_key), result.started_at, &result.transcript);
  if (!found) {
    return Finish(
        run, RollbackOutcome::kInterrupted,
        fmt::format("cannot read the audit log: {}; {}", found.error().message, kConfirmHint));
  }
  if (*found) {
    result.details["audit_entry_id"] = (**found).value("_id", "");
    return Conclude(run, *view, "found the change in LaunchDarkly's audit log after a restart; ");
  }
  result.live_version = VersionOf(*view);
  if (InTargetState(*view, type)) {
    return Finish(run, RollbackOutcome::kSkippedNoop,
                  fmt::format("flag {} is already {} in {}, but no audit entry carries {}: "
                              "someone else changed it (see History)",
                              settings_.flag, VersionOf(*view), settings_.environment,
                              Marker(request.idempotency_key)));
  }
  return Finish(run, RollbackOutcome::kFailed,
                fmt::format("LaunchDarkly's audit log has no change carrying {} and flag {} is "
                            "still {}: the change never reached LaunchDarkly; roll back again",
                            Marker(request.idempotency_key), settings_.flag, VersionOf(*view)));
}

}  // namespace backout::providers::launchdarkly
