// API server behaviour that is not storage: defaulting, validation, template hashing and
// timestamps.

#include <ctime>

#include <fmt/format.h>

#include "cluster.h"

namespace backout::emulators::kubernetes {
namespace {

using nlohmann::json;

constexpr std::string_view kHashLabel = "pod-template-hash";

void SetDefault(json& object, const char* key, json value) {
  if (!object.contains(key) || object[key].is_null()) object[key] = std::move(value);
}

// Drops nulls and empty objects and arrays, because Kubernetes' semantic equality treats a nil
// map or slice like an empty one and the JSON encoder leaves out empty optional fields.
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
  if (template_spec.contains("metadata") && template_spec["metadata"].contains("labels") &&
      template_spec["metadata"]["labels"].is_object()) {
    template_spec["metadata"]["labels"].erase(std::string(kHashLabel));
  }
  return template_spec;
}

std::string PullPolicyFor(const std::string& image) {
  if (image.find('@') != std::string::npos) return "IfNotPresent";
  size_t slash = image.rfind('/');
  size_t colon = image.rfind(':');
  bool has_tag = colon != std::string::npos && (slash == std::string::npos || colon > slash);
  if (!has_tag || image.substr(colon + 1) == "latest") return "Always";
  return "IfNotPresent";
}

void DefaultProbe(json& container, const char* name) {
  if (!container.contains(name) || !container[name].is_object()) return;
  json& probe = container[name];
  SetDefault(probe, "timeoutSeconds", 1);
  SetDefault(probe, "periodSeconds", 10);
  SetDefault(probe, "successThreshold", 1);
  SetDefault(probe, "failureThreshold", 3);
}

void DefaultContainer(json& container) {
  SetDefault(container, "resources", json::object());
  SetDefault(container, "terminationMessagePath", "/dev/termination-log");
  SetDefault(container, "terminationMessagePolicy", "File");
  if (container.contains("image") && container["image"].is_string()) {
    SetDefault(container, "imagePullPolicy", PullPolicyFor(container["image"].get<std::string>()));
  }
  if (container.contains("ports") && container["ports"].is_array()) {
    for (json& port : container["ports"]) SetDefault(port, "protocol", "TCP");
  }
  DefaultProbe(container, "livenessProbe");
  DefaultProbe(container, "readinessProbe");
  DefaultProbe(container, "startupProbe");
}

void DefaultPodTemplate(json& template_spec) {
  if (!template_spec.is_object()) template_spec = json::object();
  json& metadata = template_spec["metadata"];
  if (!metadata.is_object()) metadata = json::object();
  // The API server's encoder writes a zero creation time as null inside templates.
  metadata["creationTimestamp"] = nullptr;
  json& spec = template_spec["spec"];
  if (!spec.is_object()) spec = json::object();
  for (const char* list : {"containers", "initContainers"}) {
    if (spec.contains(list) && spec[list].is_array()) {
      for (json& container : spec[list]) DefaultContainer(container);
    }
  }
  SetDefault(spec, "restartPolicy", "Always");
  SetDefault(spec, "terminationGracePeriodSeconds", 30);
  SetDefault(spec, "dnsPolicy", "ClusterFirst");
  SetDefault(spec, "securityContext", json::object());
  SetDefault(spec, "schedulerName", "default-scheduler");
}

// The alphabet of Kubernetes' rand.SafeEncodeString: no vowels, no look-alike characters.
constexpr std::string_view kSafeAlphabet = "bcdfghjklmnpqrstvwxz2456789";

}  // namespace

std::string FormatTimestamp(SystemClock::time_point time) {
  std::time_t seconds = SystemClock::to_time_t(time);
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", parts.tm_year + 1900, parts.tm_mon + 1,
                     parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec);
}

std::optional<SystemClock::time_point> ParseTimestamp(std::string_view text) {
  std::tm parts{};
  std::string copy(text);
  const char* end = strptime(copy.c_str(), "%Y-%m-%dT%H:%M:%SZ", &parts);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return SystemClock::from_time_t(timegm(&parts));
}

std::string ComputeTemplateHash(const json& template_spec, int64_t collision_count) {
  std::string text = WithoutHashLabel(template_spec).dump();
  if (collision_count > 0) text += std::to_string(collision_count);
  uint32_t hash = 2166136261u;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 16777619u;
  }
  std::string digits = std::to_string(hash);
  std::string encoded;
  for (char digit : digits) {
    encoded += kSafeAlphabet[static_cast<unsigned char>(digit) % kSafeAlphabet.size()];
  }
  return encoded;
}

bool EqualIgnoreHash(const json& a, const json& b) {
  return Normalize(WithoutHashLabel(a)) == Normalize(WithoutHashLabel(b));
}

void DefaultDeployment(json& deployment) {
  json& spec = deployment["spec"];
  if (!spec.is_object()) spec = json::object();
  SetDefault(spec, "replicas", 1);
  SetDefault(spec, "revisionHistoryLimit", 10);
  SetDefault(spec, "progressDeadlineSeconds", 600);
  json& strategy = spec["strategy"];
  if (!strategy.is_object()) strategy = json::object();
  SetDefault(strategy, "type", "RollingUpdate");
  if (strategy["type"] == "RollingUpdate") {
    json& rolling = strategy["rollingUpdate"];
    if (!rolling.is_object()) rolling = json::object();
    SetDefault(rolling, "maxUnavailable", "25%");
    SetDefault(rolling, "maxSurge", "25%");
  }
  DefaultPodTemplate(spec["template"]);
}

std::optional<std::string> ValidateDeployment(const json& deployment) {
  std::string name = deployment.value("/metadata/name"_json_pointer, "");
  auto invalid = [&](const std::string& detail) {
    return fmt::format("Deployment.apps \"{}\" is invalid: {}", name, detail);
  };
  if (name.empty())
    return invalid("metadata.name: Required value: name or generateName is required");
  const json& spec = deployment.at("spec");
  if (!spec.contains("selector") || !spec["selector"].is_object() || spec["selector"].empty()) {
    return invalid("spec.selector: Required value");
  }
  if (spec.value("replicas", 0) < 0) {
    return invalid("spec.replicas: Invalid value: must be greater than or equal to 0");
  }
  json labels = spec.contains("/template/metadata/labels"_json_pointer)
                    ? spec.at("/template/metadata/labels"_json_pointer)
                    : json::object();
  if (!LabelSelector::FromWorkloadSelector(spec["selector"]).Matches(labels)) {
    return invalid(
        "spec.template.metadata.labels: Invalid value: `selector` does not match template "
        "`labels`");
  }
  const json* containers = nullptr;
  if (spec.contains("/template/spec/containers"_json_pointer)) {
    containers = &spec.at("/template/spec/containers"_json_pointer);
  }
  if (containers == nullptr || !containers->is_array() || containers->empty()) {
    return invalid("spec.template.spec.containers: Required value");
  }
  for (size_t i = 0; i < containers->size(); ++i) {
    const json& container = (*containers)[i];
    if (container.value("name", "").empty()) {
      return invalid(fmt::format("spec.template.spec.containers[{}].name: Required value", i));
    }
    if (container.value("image", "").empty()) {
      return invalid(fmt::format("spec.template.spec.containers[{}].image: Required value", i));
    }
  }
  return std::nullopt;
}

}  // namespace backout::emulators::kubernetes
