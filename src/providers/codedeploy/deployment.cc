#include "providers/codedeploy/deployment.h"

#include <cmath>

#include <fmt/format.h>

#include "http/sigv4.h"

namespace backout::providers::codedeploy {
namespace {

using nlohmann::json;

std::string Text(const json& object, std::string_view key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

std::optional<core::Time> OptionalTime(const json& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return std::nullopt;
  return TimeFromEpochSeconds(it->get<double>());
}

std::string InlineContentName(std::string_view prefix, const json& content) {
  std::string sha256 = Text(content, "sha256");
  if (sha256.empty()) sha256 = http::Sha256Hex(Text(content, "content"));
  return fmt::format("{}:sha256:{}", prefix, sha256);
}

}  // namespace

bool IsTerminalStatus(std::string_view status) {
  return status == "Succeeded" || status == "Failed" || status == "Stopped";
}

std::string RevisionName(const json& revision) {
  std::string type = Text(revision, "revisionType");
  if (type == "S3") {
    const json& s3 = revision.value("s3Location", json::object());
    std::string name = fmt::format("s3://{}/{}", Text(s3, "bucket"), Text(s3, "key"));
    if (!Text(s3, "version").empty()) name += "?versionId=" + Text(s3, "version");
    return name;
  }
  if (type == "GitHub") {
    const json& github = revision.value("gitHubLocation", json::object());
    return fmt::format("github:{}@{}", Text(github, "repository"), Text(github, "commitId"));
  }
  if (type == "String") return InlineContentName("string", revision.value("string", json()));
  if (type == "AppSpecContent") {
    return InlineContentName("appspec", revision.value("appSpecContent", json()));
  }
  return "revision:" + revision.dump();
}

core::Time TimeFromEpochSeconds(double seconds) {
  return core::Time(core::Duration(static_cast<int64_t>(std::llround(seconds * 1e6))));
}

double EpochSecondsFromTime(core::Time time) {
  return static_cast<double>(time.time_since_epoch().count()) / 1e6;
}

json WithTimesAsText(const json& value) {
  if (value.is_number_float()) {
    double number = value.get<double>();
    // Epoch seconds of CodeDeploy's era; anything else keeps its written form.
    if (number > 1e9 && number < 1e10) return core::FormatTime(TimeFromEpochSeconds(number));
    return value.dump();
  }
  if (value.is_object()) {
    json out = json::object();
    for (const auto& [key, item] : value.items()) out[key] = WithTimesAsText(item);
    return out;
  }
  if (value.is_array()) {
    json out = json::array();
    for (const json& item : value) out.push_back(WithTimesAsText(item));
    return out;
  }
  return value;
}

core::Result<DeploymentRecord> ParseDeployment(const json& info) {
  if (!info.is_object()) {
    return core::MakeError(core::ErrorCode::kUnavailable,
                           "CodeDeploy returned a deployment that is not a JSON object");
  }
  DeploymentRecord record;
  record.id = Text(info, "deploymentId");
  record.status = Text(info, "status");
  if (record.id.empty() || record.status.empty()) {
    return core::MakeError(core::ErrorCode::kUnavailable,
                           "CodeDeploy returned a deployment without deploymentId or status: {}",
                           info.dump().substr(0, 200));
  }

  record.application = Text(info, "applicationName");
  record.group = Text(info, "deploymentGroupName");
  record.creator = Text(info, "creator");
  record.description = Text(info, "description");
  record.revision = info.value("revision", json());
  record.version = record.revision.is_null() ? "" : RevisionName(record.revision);
  record.create_time = OptionalTime(info, "createTime");
  record.start_time = OptionalTime(info, "startTime");
  record.complete_time = OptionalTime(info, "completeTime");

  json rollback = info.value("rollbackInfo", json::object());
  record.rollback_deployment_id = Text(rollback, "rollbackDeploymentId");
  record.triggering_deployment_id = Text(rollback, "rollbackTriggeringDeploymentId");
  record.rollback_message = Text(rollback, "rollbackMessage");
  json error = info.value("errorInformation", json::object());
  record.error_code = Text(error, "code");
  record.error_message = Text(error, "message");
  record.raw = info;
  return record;
}

InstanceResult ParseInstanceTarget(const json& target) {
  InstanceResult result;
  json instance = target.value("instanceTarget", json::object());
  result.instance_id = Text(instance, "targetId");
  result.status = Text(instance, "status");
  for (const json& event : instance.value("lifecycleEvents", json::array())) {
    if (Text(event, "status") != "Failed") continue;
    result.failed_event = Text(event, "lifecycleEventName");
    result.message = Text(event.value("diagnostics", json::object()), "message");
    break;
  }
  return result;
}

}  // namespace backout::providers::codedeploy
