#include "providers/provider.h"

#include <array>
#include <utility>

#include <fmt/format.h>
#include <openssl/evp.h>

namespace backout::providers {
namespace {

using nlohmann::json;

constexpr std::array<std::pair<TranscriptKind, std::string_view>, 4> kTranscriptKindNames = {{
    {TranscriptKind::kRequest, "request"},
    {TranscriptKind::kResponse, "response"},
    {TranscriptKind::kProcess, "process"},
    {TranscriptKind::kOutput, "output"},
}};

// Readers for the persisted forms. Each names the field so a corrupt row is easy to find.
core::Result<const json*> Member(const json& object, std::string_view name, json::value_t type,
                                 std::string_view type_name) {
  if (!object.is_object()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "expected a JSON object, got {}",
                           object.type_name());
  }
  auto it = object.find(name);
  if (it == object.end()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "field '{}' is missing", name);
  }
  bool matches = it->type() == type || (type == json::value_t::number_integer &&
                                        it->type() == json::value_t::number_unsigned);
  if (!matches) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "field '{}' must be {}, got {}", name,
                           type_name, it->type_name());
  }
  return &*it;
}

core::Result<std::string> GetString(const json& object, std::string_view name) {
  auto member = Member(object, name, json::value_t::string, "a string");
  if (!member) return std::unexpected(member.error());
  return (*member)->get<std::string>();
}

core::Result<bool> GetBool(const json& object, std::string_view name) {
  auto member = Member(object, name, json::value_t::boolean, "a boolean");
  if (!member) return std::unexpected(member.error());
  return (*member)->get<bool>();
}

core::Result<int64_t> GetInt(const json& object, std::string_view name) {
  auto member = Member(object, name, json::value_t::number_integer, "an integer");
  if (!member) return std::unexpected(member.error());
  return (*member)->get<int64_t>();
}

core::Result<core::Time> GetTime(const json& object, std::string_view name) {
  auto text = GetString(object, name);
  if (!text) return std::unexpected(text.error());
  auto time = core::ParseTime(*text);
  if (!time) return std::unexpected(time.error().WithContext(fmt::format("field '{}'", name)));
  return *time;
}

// Returns the member when it is a string and "" otherwise, for fields written only for people.
std::string GetStringOrEmpty(const json& object, std::string_view name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

json GetObjectOrEmpty(const json& object, std::string_view name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_object()) return json::object();
  return *it;
}

}  // namespace

std::string_view HistoryKindName(HistoryKind kind) {
  return kind == HistoryKind::kRollback ? "rollback" : "deploy";
}

std::string_view TranscriptKindName(TranscriptKind kind) {
  for (const auto& [value, name] : kTranscriptKindNames) {
    if (value == kind) return name;
  }
  return "process";
}

void Transcript::Add(core::Time time, TranscriptKind kind, std::string summary, json data) {
  entries.push_back(TranscriptEntry{time, kind, std::move(summary), std::move(data)});
}

std::string PlanDigest(const json& action) {
  // nlohmann::json keeps object members in a std::map, so dump() already sorts them by key.
  std::string text = action.dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace);

  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha256(), nullptr);

  std::string hex = "sha256:";
  for (unsigned int i = 0; i < length; ++i) {
    hex += fmt::format("{:02x}", digest[i]);
  }
  return hex;
}

core::Result<Inventory> Provider::ReadInventory() const {
  return core::MakeError(core::ErrorCode::kFailedPrecondition,
                         "service {}: the {} provider keeps no inventory of versions", Service(),
                         Kind());
}

core::Result<void> CheckPlanOrigin(const Plan& plan, std::string_view kind,
                                   std::string_view service) {
  if (plan.provider_kind != kind || plan.service != service) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: the plan is for provider {} of service {}, not for this "
                           "{} provider; plan again with the service's own provider",
                           service, plan.provider_kind, plan.service, kind);
  }
  std::string digest = PlanDigest(plan.action);
  if (digest != plan.digest) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: the plan's digest {} does not match its action, whose "
                           "digest is {}; the stored plan was altered, so plan again",
                           service, plan.digest, digest);
  }
  auto target = plan.action.find("target_version");
  if (target != plan.action.end() && target->is_string() &&
      target->get<std::string>() != plan.target_version) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: the plan's target {} differs from its action's target {}; "
                           "the stored plan was altered, so plan again",
                           service, plan.target_version, target->get<std::string>());
  }
  return {};
}

json ToJson(const Plan& plan) {
  return json{{"provider_kind", plan.provider_kind},
              {"service", plan.service},
              {"target_version", plan.target_version},
              {"noop", plan.noop},
              {"action", plan.action},
              {"digest", plan.digest},
              {"summary", plan.summary}};
}

core::Result<Plan> PlanFromJson(const json& value) {
  auto wrap = [](const core::Error& error) {
    return std::unexpected(error.WithContext("invalid stored plan"));
  };
  Plan plan;
  auto kind = GetString(value, "provider_kind");
  if (!kind) return wrap(kind.error());
  auto service = GetString(value, "service");
  if (!service) return wrap(service.error());
  auto target = GetString(value, "target_version");
  if (!target) return wrap(target.error());
  auto noop = GetBool(value, "noop");
  if (!noop) return wrap(noop.error());
  auto action = Member(value, "action", json::value_t::object, "an object");
  if (!action) return wrap(action.error());
  auto digest = GetString(value, "digest");
  if (!digest) return wrap(digest.error());

  plan.provider_kind = *kind;
  plan.service = *service;
  plan.target_version = *target;
  plan.noop = *noop;
  plan.action = **action;
  plan.digest = *digest;
  plan.summary = GetStringOrEmpty(value, "summary");
  return plan;
}

json ToJson(const StartedAction& started) {
  json out{{"started_at", core::FormatTime(started.started_at)}, {"tool", started.tool}};
  if (started.process) {
    out["process"] = {{"pid", started.process->pid}, {"start_ticks", started.process->start_ticks}};
  }
  return out;
}

core::Result<StartedAction> StartedActionFromJson(const json& value) {
  auto wrap = [](const core::Error& error) {
    return std::unexpected(error.WithContext("invalid stored start record"));
  };
  StartedAction started;
  auto started_at = GetTime(value, "started_at");
  if (!started_at) return wrap(started_at.error());
  started.started_at = *started_at;
  started.tool = GetObjectOrEmpty(value, "tool");

  auto process = value.find("process");
  if (process != value.end() && !process->is_null()) {
    auto pid = GetInt(*process, "pid");
    if (!pid) return wrap(pid.error());
    auto ticks = GetInt(*process, "start_ticks");
    if (!ticks) return wrap(ticks.error());
    started.process = ProcessIdentity{*pid, static_cast<uint64_t>(*ticks)};
  }
  return started;
}

json ToJson(const Transcript& transcript) {
  json entries = json::array();
  for (const TranscriptEntry& entry : transcript.entries) {
    entries.push_back({{"time", core::FormatTime(entry.time)},
                       {"kind", TranscriptKindName(entry.kind)},
                       {"summary", entry.summary},
                       {"data", entry.data}});
  }
  return entries;
}

core::Result<Transcript> TranscriptFromJson(const json& value) {
  if (!value.is_array()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "invalid stored transcript: expected an array, got {}",
                           value.type_name());
  }
  Transcript transcript;
  for (size_t i = 0; i < value.size(); ++i) {
    auto wrap = [i](const core::Error& error) {
      return std::unexpected(error.WithContext(fmt::format("invalid transcript entry {}", i)));
    };
    const json& item = value[i];
    auto time = GetTime(item, "time");
    if (!time) return wrap(time.error());
    auto kind_name = GetString(item, "kind");
    if (!kind_name) return wrap(kind_name.error());
    auto summary = GetString(item, "summary");
    if (!summary) return wrap(summary.error());

    std::optional<TranscriptKind> kind;
    for (const auto& [known_kind, name] : kTranscriptKindNames) {
      if (name == *kind_name) kind = known_kind;
    }
    if (!kind) {
      return wrap(core::Error{core::ErrorCode::kInvalidArgument,
                              fmt::format("unknown kind '{}'", *kind_name)});
    }
    transcript.Add(*time, *kind, *summary, GetObjectOrEmpty(item, "data"));
  }
  return transcript;
}

json ToJson(const ExecutionResult& result) {
  json out{{"outcome", core::RollbackOutcomeName(result.outcome)},
           {"message", result.message},
           {"target_version", result.target_version},
           {"from_version", result.from_version},
           {"live_version", result.live_version},
           {"started_at", core::FormatTime(result.started_at)},
           {"finished_at", core::FormatTime(result.finished_at)},
           {"started", nullptr},
           {"transcript", ToJson(result.transcript)},
           {"details", result.details}};
  if (result.started) out["started"] = ToJson(*result.started);
  return out;
}

core::Result<ExecutionResult> ExecutionResultFromJson(const json& value) {
  auto wrap = [](const core::Error& error) {
    return std::unexpected(error.WithContext("invalid stored execution result"));
  };
  ExecutionResult result;
  auto outcome_name = GetString(value, "outcome");
  if (!outcome_name) return wrap(outcome_name.error());
  auto outcome = core::ParseRollbackOutcome(*outcome_name);
  if (!outcome) return wrap(outcome.error());
  auto message = GetString(value, "message");
  if (!message) return wrap(message.error());
  auto started_at = GetTime(value, "started_at");
  if (!started_at) return wrap(started_at.error());
  auto finished_at = GetTime(value, "finished_at");
  if (!finished_at) return wrap(finished_at.error());
  auto transcript_json = value.find("transcript");
  if (transcript_json == value.end()) {
    return wrap(core::Error{core::ErrorCode::kInvalidArgument, "field 'transcript' is missing"});
  }
  auto transcript = TranscriptFromJson(*transcript_json);
  if (!transcript) return wrap(transcript.error());

  result.outcome = *outcome;
  result.message = *message;
  result.target_version = GetStringOrEmpty(value, "target_version");
  result.from_version = GetStringOrEmpty(value, "from_version");
  result.live_version = GetStringOrEmpty(value, "live_version");
  result.started_at = *started_at;
  result.finished_at = *finished_at;
  result.transcript = std::move(*transcript);
  result.details = GetObjectOrEmpty(value, "details");

  auto started = value.find("started");
  if (started != value.end() && !started->is_null()) {
    auto parsed = StartedActionFromJson(*started);
    if (!parsed) return wrap(parsed.error());
    result.started = *parsed;
  }
  return result;
}

json ToJson(const HistoryEntry& entry) {
  return json{{"version", entry.version},
              {"time", core::FormatTime(entry.time)},
              {"actor", entry.actor},
              {"kind", HistoryKindName(entry.kind)},
              {"details", entry.details}};
}

json ToJson(const ToolRecord& record) {
  return json{{"time", core::FormatTime(record.time)},
              {"version", record.version},
              {"details", record.details}};
}

}  // namespace backout::providers
