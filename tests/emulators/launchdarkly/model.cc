#include "emulators/launchdarkly/model.h"

#include <fnmatch.h>

#include <algorithm>

#include <fmt/format.h>

namespace backout::emulators::launchdarkly {
namespace {

using nlohmann::json;

// LaunchDarkly returns at most this many audit log entries per page, and 10 by default.
constexpr int kMaxAuditPage = 20;
constexpr int kDefaultAuditPage = 10;
// Rollout weights are in thousandths of a percent, so all variations add up to this.
constexpr int kFullWeight = 100000;

int64_t Millis(Time time) { return time.time_since_epoch().count(); }

ApiError NotFound(std::string message) { return ApiError{404, "not_found", std::move(message)}; }
ApiError Invalid(std::string message) {
  return ApiError{400, "invalid_request", std::move(message)};
}

json Link(const std::string& href, const char* type = "application/json") {
  return json{{"href", href}, {"type", type}};
}

std::string ResourceSpec(const std::string& project, const std::string& env,
                         const std::string& key) {
  return fmt::format("proj/{}:env/{}:flag/{}", project, env, key);
}

// The fields of an environment's targeting that a change is named after, with the action a
// custom role grants for it and the words the audit log uses.
struct TargetingField {
  const char* field;
  const char* action;
  const char* description;
};
constexpr TargetingField kTargetingFields[] = {
    {"fallthrough", "updateFallthrough", "Changed the default rule"},
    {"offVariation", "updateOffVariation", "Changed the off variation"},
    {"rules", "updateRules", "Changed the targeting rules"},
    {"targets", "updateTargets", "Changed the individual targets"},
    {"contextTargets", "updateTargets", "Changed the individual context targets"},
    {"prerequisites", "updatePrerequisites", "Changed the prerequisites"},
};

std::optional<size_t> VariationIndex(const json& flag, const std::string& variation_id) {
  const json& variations = flag["variations"];
  for (size_t i = 0; i < variations.size(); ++i) {
    if (variations[i].value("_id", "") == variation_id) return i;
  }
  return std::nullopt;
}

// Reads {variationId} or {rolloutWeights, rolloutBucketBy, rolloutContextKind} into what a
// rule or the fallthrough serves.
ApiResult<json> ReadVariationOrRollout(const json& flag, const json& instruction) {
  if (instruction.contains("variationId")) {
    auto index = VariationIndex(flag, instruction.value("variationId", ""));
    if (!index) return std::unexpected(Invalid("variationId does not name a variation"));
    return json{{"variation", *index}};
  }
  const json& weights = instruction.value("rolloutWeights", json());
  if (!weights.is_object() || weights.empty()) {
    return std::unexpected(Invalid("give either variationId or rolloutWeights"));
  }
  json variations = json::array();
  int total = 0;
  for (const auto& [id, weight] : weights.items()) {
    auto index = VariationIndex(flag, id);
    if (!index)
      return std::unexpected(Invalid(fmt::format("rolloutWeights: unknown variation {}", id)));
    if (!weight.is_number_integer() || weight.get<int>() < 0 || weight.get<int>() > kFullWeight) {
      return std::unexpected(Invalid("rolloutWeights: each weight is 0 to 100000"));
    }
    total += weight.get<int>();
    variations.push_back({{"variation", *index}, {"weight", weight.get<int>()}});
  }
  if (total != kFullWeight) {
    return std::unexpected(Invalid(fmt::format("rolloutWeights add up to {}, not 100000", total)));
  }
  json rollout{{"variations", variations},
               {"contextKind", instruction.value("rolloutContextKind", "user")}};
  if (instruction.contains("rolloutBucketBy")) rollout["bucketBy"] = instruction["rolloutBucketBy"];
  return json{{"rollout", rollout}};
}

// Checks that an environment's configuration names only variations and flags that exist.
std::optional<std::string> ValidateEnvironment(const json& flag, const json& config) {
  size_t count = flag["variations"].size();
  auto valid_index = [count](const json& value) {
    return value.is_number_integer() && value.get<int64_t>() >= 0 && value.get<size_t>() < count;
  };
  if (config.contains("offVariation") && !config["offVariation"].is_null() &&
      !valid_index(config["offVariation"])) {
    return "offVariation is not a variation index";
  }
  auto check_serve = [&](const json& serve, std::string_view what) -> std::optional<std::string> {
    if (serve.contains("variation")) {
      if (!valid_index(serve["variation"])) return fmt::format("{}: invalid variation", what);
      return std::nullopt;
    }
    if (!serve.contains("rollout"))
      return fmt::format("{}: serves neither variation nor rollout", what);
    int total = 0;
    for (const json& weighted : serve["rollout"].value("variations", json::array())) {
      if (!valid_index(weighted.value("variation", json()))) {
        return fmt::format("{}: rollout names an invalid variation", what);
      }
      total += weighted.value("weight", 0);
    }
    if (total != kFullWeight) return fmt::format("{}: rollout weights add up to {}", what, total);
    return std::nullopt;
  };
  if (auto error = check_serve(config.value("fallthrough", json::object()), "fallthrough")) {
    return error;
  }
  for (const json& rule : config.value("rules", json::array())) {
    if (auto error = check_serve(rule, "rule")) return error;
  }
  for (const char* field : {"targets", "contextTargets"}) {
    for (const json& target : config.value(field, json::array())) {
      if (!valid_index(target.value("variation", json()))) {
        return fmt::format("{}: invalid variation", field);
      }
    }
  }
  return std::nullopt;
}

}  // namespace

std::expected<Model, std::string> Model::FromJson(const json& state, Time now) {
  Model model;

  // Projects and their environments; one project `default` with production and staging when
  // the state names none.
  json projects = state.value("projects", json::array());
  if (projects.empty()) {
    projects = json::array({{{"key", "default"},
                             {"environments",
                              {{{"key", "production"}, {"name", "Production"}},
                               {{"key", "staging"}, {"name", "Staging"}}}}}});
  }
  for (const json& project : projects) {
    Project parsed{project.value("key", ""), {}};
    if (parsed.key.empty()) return std::unexpected("projects: each needs a key");
    for (const json& env : project.value("environments", json::array())) {
      Environment environment{env.value("key", ""), env.value("name", env.value("key", "")),
                              env.value("approvalRequired", false)};
      if (environment.key.empty()) return std::unexpected("environments: each needs a key");
      parsed.environments.push_back(std::move(environment));
    }
    if (parsed.environments.empty()) {
      return std::unexpected(fmt::format("project {} has no environments", parsed.key));
    }
    model.projects_.push_back(std::move(parsed));
  }

  // Access tokens; one writing personal token when the state names none.
  json tokens = state.value("tokens", json::array());
  if (tokens.empty()) {
    tokens = json::array(
        {{{"token", "api-emulator-token"},
          {"name", "emulator"},
          {"member",
           {{"email", "owner@example.com"}, {"firstName", "Account"}, {"lastName", "Owner"}}}}});
  }
  for (const json& token : tokens) {
    Token parsed;
    parsed.value = token.value("token", "");
    if (parsed.value.size() < 4)
      return std::unexpected("tokens: each needs a token of 4+ characters");
    parsed.caller.token_id = model.NextId();
    parsed.caller.token_name = token.value("name", "token");
    parsed.caller.token_ending = parsed.value.substr(parsed.value.size() - 4);
    parsed.caller.service_token = token.value("serviceToken", false);
    parsed.caller.can_write = token.value("write", true);
    if (token.contains("member") && !parsed.caller.service_token) {
      parsed.caller.member = token["member"];
      parsed.caller.member["_id"] = model.NextId();
    }
    model.tokens_.push_back(std::move(parsed));
  }

  // Flags, each completed to the full representation LaunchDarkly returns.
  for (const json& input : state.value("flags", json::array())) {
    std::string project = input.value("project", model.projects_.front().key);
    const Project* owner = model.FindProject(project);
    if (owner == nullptr) return std::unexpected(fmt::format("flag: unknown project {}", project));
    std::string key = input.value("key", "");
    if (key.empty()) return std::unexpected("flags: each needs a key");

    json variations =
        input.value("variations", json::array({{{"value", true}}, {{"value", false}}}));
    for (json& variation : variations) {
      if (!variation.contains("_id")) variation["_id"] = model.NextId();
    }
    bool boolean = variations.size() == 2 && variations[0]["value"].is_boolean() &&
                   variations[1]["value"].is_boolean();
    json flag{
        {"name", input.value("name", key)},
        {"kind", boolean ? "boolean" : "multivariate"},
        {"key", key},
        {"description", input.value("description", "")},
        {"_version", 1},
        {"creationDate", Millis(now)},
        {"includeInSnippet", false},
        {"clientSideAvailability", {{"usingMobileKey", false}, {"usingEnvironmentId", false}}},
        {"variations", variations},
        {"temporary", true},
        {"tags", input.value("tags", json::array())},
        {"_links",
         {{"parent", Link(fmt::format("/api/v2/flags/{}", project))},
          {"self", Link(fmt::format("/api/v2/flags/{}/{}", project, key))}}},
        {"experiments", {{"baselineIdx", 0}, {"items", json::array()}}},
        {"customProperties", json::object()},
        {"archived", input.value("archived", false)},
        {"defaults", {{"onVariation", 0}, {"offVariation", variations.size() > 1 ? 1 : 0}}},
        {"environments", json::object()}};

    json given = input.value("environments", json::object());
    for (const Environment& env : owner->environments) {
      json config = given.value(env.key, json::object());
      json full{
          {"on", config.value("on", false)},
          {"archived", false},
          {"salt", fmt::format("{:032x}", model.next_id_ * 2654435761u)},
          {"sel", fmt::format("{:032x}", model.next_id_ * 40503u)},
          {"lastModified", Millis(now)},
          {"version", 1},
          {"targets", config.value("targets", json::array())},
          {"contextTargets", config.value("contextTargets", json::array())},
          {"rules", config.value("rules", json::array())},
          {"fallthrough", config.value("fallthrough", json{{"variation", 0}})},
          {"prerequisites", config.value("prerequisites", json::array())},
          {"_site", Link(fmt::format("/{}/{}/features/{}", project, env.key, key), "text/html")},
          {"_environmentName", env.name},
          {"trackEvents", false},
          {"trackEventsFallthrough", false}};
      // An absent or null offVariation means none is set: SDKs then serve the fallback value
      // the application passed in code.
      if (config.contains("offVariation") && !config["offVariation"].is_null()) {
        full["offVariation"] = config["offVariation"];
      }
      for (json& rule : full["rules"]) {
        if (!rule.contains("_id")) rule["_id"] = model.NextId();
        if (!rule.contains("clauses")) rule["clauses"] = json::array();
        if (!rule.contains("trackEvents")) rule["trackEvents"] = false;
      }
      if (auto error = ValidateEnvironment(flag, full)) {
        return std::unexpected(fmt::format("flag {} environment {}: {}", key, env.key, *error));
      }
      flag["environments"][env.key] = full;
    }
    model.flags_[project][key] = std::move(flag);
  }
  return model;
}

std::string Model::NextId() {
  // LaunchDarkly's ids look like MongoDB object ids: 24 hexadecimal digits.
  return fmt::format("6{:023x}", next_id_++);
}

std::optional<Caller> Model::FindCaller(const std::string& token) const {
  for (const Token& candidate : tokens_) {
    if (candidate.value == token) return candidate.caller;
  }
  return std::nullopt;
}

const Model::Project* Model::FindProject(const std::string& key) const {
  for (const Project& project : projects_) {
    if (project.key == key) return &project;
  }
  return nullptr;
}

json* Model::FindFlag(const std::string& project, const std::string& key) {
  auto in_project = flags_.find(project);
  if (in_project == flags_.end()) return nullptr;
  auto flag = in_project->second.find(key);
  return flag == in_project->second.end() ? nullptr : &flag->second;
}

const json* Model::FindFlag(const std::string& project, const std::string& key) const {
  return const_cast<Model*>(this)->FindFlag(project, key);
}

ApiResult<json> Model::GetFlag(const std::string& project, const std::string& key,
                               const std::string& env) const {
  if (FindProject(project) == nullptr) return std::unexpected(NotFound("Unknown project key"));
  const json* flag = FindFlag(project, key);
  if (flag == nullptr) return std::unexpected(NotFound("Unknown flag key"));
  if (env.empty()) return *flag;
  json filtered = *flag;
  filtered["environments"] = json::object();
  if ((*flag)["environments"].contains(env)) {
    filtered["environments"][env] = (*flag)["environments"][env];
  }
  return filtered;
}

ApiResult<json> Model::DependentFlags(const std::string& project, const std::string& env,
                                      const std::string& key) const {
  if (FindProject(project) == nullptr) return std::unexpected(NotFound("Unknown project key"));
  if (FindFlag(project, key) == nullptr) return std::unexpected(NotFound("Unknown flag key"));
  json items = json::array();
  for (const auto& [other_key, other] : flags_.at(project)) {
    const json& config = other["environments"].value(env, json::object());
    for (const json& prerequisite : config.value("prerequisites", json::array())) {
      if (prerequisite.value("key", "") != key) continue;
      items.push_back(
          {{"key", other_key},
           {"name", other["name"]},
           {"_links", {{"self", Link(fmt::format("/api/v2/flags/{}/{}", project, other_key))}}},
           {"_site",
            Link(fmt::format("/{}/{}/features/{}", project, env, other_key), "text/html")}});
    }
  }
  return json{
      {"items", items},
      {"_links",
       {{"self", Link(fmt::format("/api/v2/flags/{}/{}/{}/dependent-flags", project, env, key))}}},
      {"_site", Link(fmt::format("/{}/{}/features/{}/insights", project, env, key), "text/html")}};
}

ApiResult<std::string> Model::ApplySemanticPatch(json& flag, const json& body) {
  std::string env = body.value("environmentKey", "");
  const json& instructions = body.value("instructions", json());
  if (!instructions.is_array() || instructions.empty()) {
    return std::unexpected(Invalid("instructions must be a non-empty array"));
  }
  if (env.empty()) {
    return std::unexpected(Invalid("environmentKey is required for these instructions"));
  }
  if (!flag["environments"].contains(env)) {
    return std::unexpected(NotFound(fmt::format("Unknown environment key {}", env)));
  }
  json& config = flag["environments"][env];

  for (const json& instruction : instructions) {
    std::string kind = instruction.value("kind", "");
    if (kind == "turnFlagOff" || kind == "turnFlagOn") {
      config["on"] = kind == "turnFlagOn";
    } else if (kind == "updateOffVariation") {
      auto index = VariationIndex(flag, instruction.value("variationId", ""));
      if (!index) return std::unexpected(Invalid("variationId does not name a variation"));
      config["offVariation"] = *index;
    } else if (kind == "updateFallthroughVariationOrRollout") {
      auto serve = ReadVariationOrRollout(flag, instruction);
      if (!serve) return std::unexpected(serve.error());
      config["fallthrough"] = *serve;
    } else if (kind == "updateRuleVariationOrRollout") {
      auto serve = ReadVariationOrRollout(flag, instruction);
      if (!serve) return std::unexpected(serve.error());
      std::string rule_id = instruction.value("ruleId", "");
      auto rule = std::find_if(config["rules"].begin(), config["rules"].end(),
                               [&](const json& r) { return r.value("_id", "") == rule_id; });
      if (rule == config["rules"].end()) {
        return std::unexpected(Invalid(fmt::format("ruleId {} does not name a rule", rule_id)));
      }
      rule->erase("variation");
      rule->erase("rollout");
      rule->update(*serve);
    } else if (kind == "clearTargets") {
      auto index = VariationIndex(flag, instruction.value("variationId", ""));
      if (!index) return std::unexpected(Invalid("variationId does not name a variation"));
      for (const char* field : {"targets", "contextTargets"}) {
        json kept = json::array();
        for (const json& target : config[field]) {
          if (target.value("variation", -1) != static_cast<int>(*index)) kept.push_back(target);
        }
        config[field] = kept;
      }
    } else {
      // NOTE: LaunchDarkly accepts many more instructions; the emulator rejects them as
      // unknown instead of pretending to apply them.
      return std::unexpected(Invalid(fmt::format("unsupported instruction kind '{}'", kind)));
    }
  }
  return env;
}

ApiResult<json> Model::PatchFlag(const std::string& project, const std::string& key,
                                 const json& body, bool semantic, bool ignore_conflicts,
                                 const Caller& caller, Time now) {
  if (FindProject(project) == nullptr) return std::unexpected(NotFound("Unknown project key"));
  json* stored = FindFlag(project, key);
  if (stored == nullptr) return std::unexpected(NotFound("Unknown flag key"));
  if (!caller.can_write) {
    return std::unexpected(
        ApiError{403, "forbidden", "Access to the requested resource was denied"});
  }

  // Step 1: apply the patch to a copy.
  json flag = *stored;
  std::string comment;
  if (semantic) {
    if (!body.is_object()) return std::unexpected(Invalid("a semantic patch is a JSON object"));
    comment = body.value("comment", "");
    auto env = ApplySemanticPatch(flag, body);
    if (!env) return std::unexpected(env.error());
  } else {
    json operations;
    if (body.is_array()) {
      operations = body;
    } else if (body.is_object() && body.contains("patch")) {
      operations = body["patch"];
      comment = body.value("comment", "");
    } else if (body.is_object() && body.contains("merge")) {
      comment = body.value("comment", "");
      flag.merge_patch(body["merge"]);
    } else {
      // LaunchDarkly reads a body without the semantic patch Content-Type as a JSON patch, so
      // semantic instructions sent as plain application/json fail this way.
      return std::unexpected(
          Invalid("the body is not a JSON patch: send an array of operations, "
                  "{\"comment\", \"patch\"}, or a semantic patch with Content-Type "
                  "application/json; domain-model=launchdarkly.semanticpatch"));
    }
    if (!operations.is_null()) {
      try {
        flag = flag.patch(operations);
      } catch (const json::exception& error) {
        return std::unexpected(ApiError{400, "patch_failed", error.what()});
      }
    }
    for (const char* read_only : {"key", "_version", "_links", "creationDate", "variations"}) {
      if (flag.value(read_only, json()) != stored->value(read_only, json())) {
        return std::unexpected(
            Invalid(fmt::format("'{}' cannot be changed by a patch", read_only)));
      }
    }
    if (!flag["environments"].is_object() ||
        flag["environments"].size() != (*stored)["environments"].size()) {
      return std::unexpected(Invalid("environments cannot be added or removed by a patch"));
    }
  }

  // Step 2: validate each changed environment and check that the caller may change it now.
  const Project* owner = FindProject(project);
  for (const Environment& env : owner->environments) {
    json& after = flag["environments"][env.key];
    const json& before = (*stored)["environments"][env.key];
    if (after == before) continue;
    if (auto error = ValidateEnvironment(flag, after)) {
      return std::unexpected(Invalid(fmt::format("environment {}: {}", env.key, *error)));
    }
    std::string action = after.value("on", false) != before.value("on", false) ? "updateOn" : "";
    for (const TargetingField& field : kTargetingFields) {
      if (action.empty() && after.value(field.field, json()) != before.value(field.field, json())) {
        action = field.action;
      }
    }
    if (env.approval_required) {
      return std::unexpected(ApiError{
          405, "method_not_allowed",
          fmt::format("Flag configuration updates require approval: action '{}' not allowed",
                      action.empty() ? "updateFlag" : action)});
    }
    std::string pending = fmt::format("{}/{}/{}", project, key, env.key);
    if (!ignore_conflicts && std::find(pending_changes_.begin(), pending_changes_.end(), pending) !=
                                 pending_changes_.end()) {
      return std::unexpected(Invalid(
          "This change conflicts with a pending scheduled change; pass ignoreConflicts=true to "
          "apply it anyway"));
    }
    after["version"] = before.value("version", 1) + 1;
    after["lastModified"] = Millis(now);
  }

  // Step 3: commit and record.
  if (flag == *stored) return flag;
  flag["_version"] = stored->value("_version", 1) + 1;
  json before = *stored;
  *stored = flag;
  RecordChanges(project, before, flag, comment, caller, now);
  return flag;
}

void Model::RecordChanges(const std::string& project, const json& before, const json& after,
                          const std::string& comment, const Caller& caller, Time now) {
  const Project* owner = FindProject(project);
  std::string key = after["key"];
  std::string name = after["name"];
  for (const Environment& env : owner->environments) {
    const json& old_config = before["environments"][env.key];
    const json& new_config = after["environments"][env.key];
    if (old_config.value("on", false) == new_config.value("on", false)) {
      bool targeting_changed = false;
      for (const TargetingField& field : kTargetingFields) {
        targeting_changed |=
            old_config.value(field.field, json()) != new_config.value(field.field, json());
      }
      if (!targeting_changed) continue;
    }

    std::string resource = ResourceSpec(project, env.key, key);
    json accesses = json::array();
    std::string description;
    std::string title_verb = "updated the flag";
    if (old_config.value("on", false) != new_config.value("on", false)) {
      bool on = new_config.value("on", false);
      accesses.push_back({{"action", "updateOn"}, {"resource", resource}});
      description += on ? "- Turned on the flag\n" : "- Turned off the flag\n";
      title_verb = on ? "turned on the flag" : "turned off the flag";
    }
    for (const TargetingField& field : kTargetingFields) {
      if (old_config.value(field.field, json()) == new_config.value(field.field, json())) continue;
      accesses.push_back({{"action", field.action}, {"resource", resource}});
      description += fmt::format("- {}\n", field.description);
    }

    std::string id = NextId();
    std::string who =
        caller.member.is_object() ? caller.member.value("email", "") : caller.token_name;
    json entry{
        {"_links",
         {{"canonical", Link(fmt::format("/api/v2/flags/{}/{}", project, key))},
          {"parent", Link("/api/v2/auditlog")},
          {"self", Link(fmt::format("/api/v2/auditlog/{}", id))},
          {"site", Link(fmt::format("/{}/{}/features/{}", project, env.key, key), "text/html")}}},
        {"_id", id},
        {"_accountId", account_id_},
        {"date", Millis(now)},
        {"accesses", accesses},
        {"kind", "flag"},
        {"name", name},
        {"description", description},
        {"shortDescription", description},
        {"token",
         {{"_id", caller.token_id},
          {"name", caller.token_name},
          {"ending", caller.token_ending},
          {"serviceToken", caller.service_token}}},
        {"titleVerb", title_verb},
        {"title", fmt::format("{} {} [{}]({}) in `{}`", who, title_verb, name,
                              fmt::format("/{}/{}/features/{}", project, env.key, key), env.name)},
        {"target", {{"name", name}, {"resources", {resource}}}},
        {"previousVersion", before},
        {"currentVersion", after},
        {"delta",
         {{"environments", {{env.key, {{"before", old_config}, {"after", new_config}}}}}}}};
    if (!comment.empty()) entry["comment"] = comment;
    if (caller.member.is_object()) entry["member"] = caller.member;
    audit_log_.push_back(std::move(entry));
  }
}

ApiResult<json> Model::ListAuditLog(const std::map<std::string, std::string>& query) const {
  auto number = [&query](const char* name) -> std::optional<int64_t> {
    auto it = query.find(name);
    if (it == query.end() || it->second.empty()) return std::nullopt;
    try {
      return std::stoll(it->second);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  };
  auto text = [&query](const char* name) {
    auto it = query.find(name);
    return it == query.end() ? std::string() : it->second;
  };
  std::optional<int64_t> before = number("before");
  std::optional<int64_t> after = number("after");
  int64_t limit = number("limit").value_or(kDefaultAuditPage);
  if (limit < 1 || limit > kMaxAuditPage) {
    return std::unexpected(Invalid(fmt::format("limit must be 1 to {}", kMaxAuditPage)));
  }
  std::string q = text("q");
  std::string spec = text("spec");

  json items = json::array();
  for (auto it = audit_log_.rbegin(); it != audit_log_.rend(); ++it) {
    const json& entry = *it;
    int64_t date = entry["date"];
    if (before && date >= *before) continue;
    if (after && date <= *after) continue;
    if (!q.empty()) {
      std::string haystack = entry.value("comment", "") + "\n" + entry.value("description", "") +
                             "\n" + entry.value("title", "") + "\n" + entry.value("name", "");
      if (haystack.find(q) == std::string::npos) continue;
    }
    if (!spec.empty()) {
      bool matched = false;
      for (const json& access : entry["accesses"]) {
        std::string resource = access.value("resource", "");
        matched |= fnmatch(spec.c_str(), resource.c_str(), 0) == 0;
      }
      if (!matched) continue;
    }
    json listing = entry;
    for (const char* detail : {"previousVersion", "currentVersion", "delta", "subentries"}) {
      listing.erase(detail);
    }
    items.push_back(std::move(listing));
    if (static_cast<int64_t>(items.size()) == limit) break;
  }
  return json{{"items", items}, {"_links", {{"self", Link("/api/v2/auditlog")}}}};
}

ApiResult<json> Model::GetAuditEntry(const std::string& id) const {
  for (const json& entry : audit_log_) {
    if (entry["_id"] == id) return entry;
  }
  return std::unexpected(NotFound("Unknown audit log entry"));
}

std::expected<void, std::string> Model::SetApprovalRequired(const std::string& project,
                                                            const std::string& environment,
                                                            bool required) {
  for (Project& candidate : projects_) {
    if (candidate.key != project) continue;
    for (Environment& env : candidate.environments) {
      if (env.key == environment) {
        env.approval_required = required;
        return {};
      }
    }
  }
  return std::unexpected(fmt::format("unknown environment {}/{}", project, environment));
}

std::expected<void, std::string> Model::SetPendingChange(const std::string& project,
                                                         const std::string& key,
                                                         const std::string& environment,
                                                         bool pending) {
  if (FindFlag(project, key) == nullptr) {
    return std::unexpected(fmt::format("unknown flag {}/{}", project, key));
  }
  std::string name = fmt::format("{}/{}/{}", project, key, environment);
  std::erase(pending_changes_, name);
  if (pending) pending_changes_.push_back(name);
  return {};
}

json Model::Dump() const {
  json flags = json::object();
  for (const auto& [project, by_key] : flags_) {
    for (const auto& [key, flag] : by_key) flags[project][key] = flag;
  }
  return json{{"flags", flags}, {"auditLog", audit_log_}};
}

}  // namespace backout::emulators::launchdarkly
