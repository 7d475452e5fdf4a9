#include "app/config_signals.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

namespace backout::app::config_internal {
namespace {

constexpr std::string_view kSignalsKeys[] = {"alertmanager", "prometheus", "evaluation_interval"};
constexpr std::string_view kAlertmanagerKeys[] = {"bearer_token", "hmac_secret", "service_label",
                                                  "max_body_bytes"};
constexpr std::string_view kPrometheusKeys[] = {"url", "timeout"};
constexpr std::string_view kDetectionKeys[] = {"watch_window", "rules", "probes",
                                               "automatic_rollback"};
constexpr std::string_view kAutomaticKeys[] = {"enabled", "severities"};
constexpr std::string_view kRuleKeys[] = {"name", "query", "severity"};
constexpr std::string_view kProbeKeys[] = {"name",    "url",     "method", "expected_status",
                                           "timeout", "severity"};
constexpr std::string_view kProbeMethods[] = {"GET", "HEAD", "POST"};

std::optional<std::string> CheckHttpUrl(const std::string& url) {
  if (url.starts_with("http://") || url.starts_with("https://")) return std::nullopt;
  return fmt::format("invalid URL '{}': use http:// or https://", url);
}

std::optional<std::string> ReadString(YamlReader& reader, const YamlValue& value) {
  return reader.String(value);
}

std::optional<std::chrono::milliseconds> ReadMilliseconds(YamlReader& reader,
                                                          const YamlValue& value) {
  auto duration = reader.Duration(value);
  if (!duration) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(*duration);
}

std::optional<AlertmanagerReceiverConfig> ParseAlertmanager(ParseContext& context,
                                                            const YamlValue& value) {
  YamlReader& reader = context.reader;
  auto fields = reader.Mapping(value, kAlertmanagerKeys);
  if (!fields) return std::nullopt;
  AlertmanagerReceiverConfig receiver;
  if (const YamlValue* token = fields->Find("bearer_token")) {
    receiver.bearer_token = ReadSecret(context, *token);
    if (!receiver.bearer_token) return std::nullopt;
  }
  if (const YamlValue* secret = fields->Find("hmac_secret")) {
    receiver.hmac_secret = ReadSecret(context, *secret);
    if (!receiver.hmac_secret) return std::nullopt;
  }
  if (!receiver.bearer_token && !receiver.hmac_secret) {
    reader.Fail(value,
                "give bearer_token (Alertmanager's http_config sends it) or hmac_secret, "
                "so that the receiver can authenticate senders");
    return std::nullopt;
  }
  if (const YamlValue* label = fields->Find("service_label")) {
    auto text = ReadString(reader, *label);
    if (!text) return std::nullopt;
    receiver.service_label = std::move(*text);
  }
  if (const YamlValue* limit = fields->Find("max_body_bytes")) {
    auto bytes = reader.Integer(*limit);
    if (!bytes) return std::nullopt;
    if (*bytes < 1024) {
      reader.Fail(*limit, fmt::format("invalid max_body_bytes {}: use at least 1024", *bytes));
      return std::nullopt;
    }
    receiver.max_body_bytes = *bytes;
  }
  return receiver;
}

std::optional<PrometheusConfig> ParsePrometheus(ParseContext& context, const YamlValue& value) {
  YamlReader& reader = context.reader;
  auto fields = reader.Mapping(value, kPrometheusKeys);
  if (!fields) return std::nullopt;
  PrometheusConfig prometheus;
  const YamlValue* url = reader.Required(*fields, "url");
  if (url == nullptr) return std::nullopt;
  auto text = ReadString(reader, *url);
  if (!text) return std::nullopt;
  if (auto problem = CheckHttpUrl(*text)) {
    reader.Fail(*url, *problem);
    return std::nullopt;
  }
  prometheus.url = std::move(*text);
  if (const YamlValue* timeout = fields->Find("timeout")) {
    auto duration = ReadMilliseconds(reader, *timeout);
    if (!duration) return std::nullopt;
    prometheus.timeout = *duration;
  }
  return prometheus;
}

std::optional<std::string> ReadUniqueItemName(YamlReader& reader, const YamlFields& fields,
                                              std::map<std::string, int, std::less<>>& seen,
                                              std::string_view what) {
  const YamlValue* value = reader.Required(fields, "name");
  if (value == nullptr) return std::nullopt;
  auto name = reader.String(*value);
  if (!name) return std::nullopt;
  if (auto problem = CheckName(*name)) {
    reader.Fail(*value, *problem);
    return std::nullopt;
  }
  const auto [it, inserted] = seen.emplace(*name, value->line);
  if (!inserted) {
    reader.Fail(*value, fmt::format("duplicate {} name '{}' (first defined at line {})", what,
                                    *name, it->second));
    return std::nullopt;
  }
  return name;
}

std::optional<std::vector<DetectionRuleConfig>> ParseRules(ParseContext& context,
                                                           const YamlValue& value) {
  YamlReader& reader = context.reader;
  auto items = reader.List(value);
  if (!items) return std::nullopt;
  std::vector<DetectionRuleConfig> rules;
  std::map<std::string, int, std::less<>> seen;
  for (const YamlValue& item : *items) {
    auto fields = reader.Mapping(item, kRuleKeys);
    if (!fields) return std::nullopt;
    DetectionRuleConfig rule;
    auto name = ReadUniqueItemName(reader, *fields, seen, "rule");
    if (!name) return std::nullopt;
    rule.name = std::move(*name);
    const YamlValue* query = reader.Required(*fields, "query");
    if (query == nullptr) return std::nullopt;
    auto text = ReadString(reader, *query);
    if (!text) return std::nullopt;
    rule.query = std::move(*text);
    if (const YamlValue* severity = fields->Find("severity")) {
      auto level = ReadString(reader, *severity);
      if (!level) return std::nullopt;
      rule.severity = std::move(*level);
    }
    rules.push_back(std::move(rule));
  }
  return rules;
}

std::optional<std::vector<ProbeConfig>> ParseProbes(ParseContext& context, const YamlValue& value) {
  YamlReader& reader = context.reader;
  auto items = reader.List(value);
  if (!items) return std::nullopt;
  std::vector<ProbeConfig> probes;
  std::map<std::string, int, std::less<>> seen;
  for (const YamlValue& item : *items) {
    auto fields = reader.Mapping(item, kProbeKeys);
    if (!fields) return std::nullopt;
    ProbeConfig probe;
    auto name = ReadUniqueItemName(reader, *fields, seen, "probe");
    if (!name) return std::nullopt;
    probe.name = std::move(*name);
    const YamlValue* url = reader.Required(*fields, "url");
    if (url == nullptr) return std::nullopt;
    auto text = ReadString(reader, *url);
    if (!text) return std::nullopt;
    if (auto problem = CheckHttpUrl(*text)) {
      reader.Fail(*url, *problem);
      return std::nullopt;
    }
    probe.url = std::move(*text);
    if (const YamlValue* method = fields->Find("method")) {
      auto verb = ReadString(reader, *method);
      if (!verb) return std::nullopt;
      if (std::ranges::find(kProbeMethods, *verb) == std::ranges::end(kProbeMethods)) {
        reader.Fail(*method, fmt::format("unsupported method '{}': use GET, HEAD or POST", *verb));
        return std::nullopt;
      }
      probe.method = std::move(*verb);
    }
    if (const YamlValue* status = fields->Find("expected_status")) {
      auto code = reader.Integer(*status);
      if (!code) return std::nullopt;
      if (*code < 100 || *code > 599) {
        reader.Fail(*status, fmt::format("invalid status {}: use 100 to 599", *code));
        return std::nullopt;
      }
      probe.expected_status = *code;
    }
    if (const YamlValue* timeout = fields->Find("timeout")) {
      auto duration = ReadMilliseconds(reader, *timeout);
      if (!duration) return std::nullopt;
      probe.timeout = *duration;
    }
    if (const YamlValue* severity = fields->Find("severity")) {
      auto level = ReadString(reader, *severity);
      if (!level) return std::nullopt;
      probe.severity = std::move(*level);
    }
    probes.push_back(std::move(probe));
  }
  return probes;
}

}  // namespace

std::optional<SignalsConfig> ParseSignals(ParseContext& context, const YamlValue& value) {
  YamlReader& reader = context.reader;
  auto fields = reader.Mapping(value, kSignalsKeys);
  if (!fields) return std::nullopt;
  SignalsConfig signals;
  if (const YamlValue* alertmanager = fields->Find("alertmanager")) {
    signals.alertmanager = ParseAlertmanager(context, *alertmanager);
    if (!signals.alertmanager) return std::nullopt;
  }
  if (const YamlValue* prometheus = fields->Find("prometheus")) {
    signals.prometheus = ParsePrometheus(context, *prometheus);
    if (!signals.prometheus) return std::nullopt;
  }
  if (const YamlValue* interval = fields->Find("evaluation_interval")) {
    auto duration = ReadMilliseconds(reader, *interval);
    if (!duration) return std::nullopt;
    signals.evaluation_interval = *duration;
  }
  return signals;
}

std::optional<DetectionConfig> ParseDetection(ParseContext& context, const YamlValue& value) {
  YamlReader& reader = context.reader;
  auto fields = reader.Mapping(value, kDetectionKeys);
  if (!fields) return std::nullopt;
  DetectionConfig detection;
  if (const YamlValue* window = fields->Find("watch_window")) {
    auto duration = ReadMilliseconds(reader, *window);
    if (!duration) return std::nullopt;
    detection.watch_window = *duration;
  }
  if (const YamlValue* rules = fields->Find("rules")) {
    auto parsed = ParseRules(context, *rules);
    if (!parsed) return std::nullopt;
    detection.rules = std::move(*parsed);
  }
  if (const YamlValue* probes = fields->Find("probes")) {
    auto parsed = ParseProbes(context, *probes);
    if (!parsed) return std::nullopt;
    detection.probes = std::move(*parsed);
  }
  if (const YamlValue* automatic = fields->Find("automatic_rollback")) {
    auto automatic_fields = reader.Mapping(*automatic, kAutomaticKeys);
    if (!automatic_fields) return std::nullopt;
    if (const YamlValue* enabled = automatic_fields->Find("enabled")) {
      auto flag = reader.Bool(*enabled);
      if (!flag) return std::nullopt;
      detection.automatic_rollback = *flag;
    }
    if (const YamlValue* severities = automatic_fields->Find("severities")) {
      auto levels = reader.StringList(*severities);
      if (!levels) return std::nullopt;
      detection.automatic_severities = std::move(*levels);
    }
    if (detection.automatic_rollback && detection.automatic_severities.empty()) {
      reader.Fail(*automatic,
                  "automatic_rollback is enabled but lists no severities; name the signal "
                  "severities that may roll back without a person, such as [critical]");
      return std::nullopt;
    }
  }
  return detection;
}

}  // namespace backout::app::config_internal
