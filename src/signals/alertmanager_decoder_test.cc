// Compares ParseAlertmanagerWebhook with a reference decoder that parses the body into an
// nlohmann document and looks each member up, on seeded random bodies. The streaming decoder
// promises the reference's result for every body, invalid ones included. The one exception is a
// number too large for a double, which the reference lets escape as out_of_range, so the bodies
// here have none.

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "signals/alertmanager.h"

namespace backout::signals {
namespace {

using Json = nlohmann::json;

core::Error Invalid(std::string message) {
  return core::Error{core::ErrorCode::kInvalidArgument, std::move(message)};
}

std::string ReferenceString(const Json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

// A value as an error message names it: containers by kind, scalars as ASCII JSON cut to 64
// characters.
std::string ReferenceRender(const Json& value) {
  if (value.is_object()) return "an object";
  if (value.is_array()) return "an array";
  std::string text = value.dump(-1, ' ', /*ensure_ascii=*/true);
  if (text.size() > 64) text = text.substr(0, 61) + "...";
  return text;
}

bool IsTruncatedCount(const Json& value) {
  constexpr uint64_t kMax = (uint64_t{1} << 53) - 1;
  if (value.is_number_unsigned()) return value.get<uint64_t>() <= kMax;
  if (value.is_number_integer()) return value.get<int64_t>() >= 0;
  return false;
}

core::Result<std::map<std::string, std::string>> ReferenceStringMap(const Json& object,
                                                                    const char* key) {
  std::map<std::string, std::string> values;
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return values;
  if (!it->is_object()) return std::unexpected(Invalid(fmt::format("`{}` is not an object", key)));
  for (const auto& [name, value] : it->items()) {
    if (!value.is_string()) {
      return std::unexpected(Invalid(fmt::format("`{}.{}` is not a string", key, name)));
    }
    values[name] = value.get<std::string>();
  }
  return values;
}

core::Result<Alert> ReferenceAlert(const Json& item, std::string_view service_label) {
  if (!item.is_object()) return std::unexpected(Invalid("the alert is not an object"));
  Alert alert;
  const std::string status = ReferenceString(item, "status");
  if (status != "firing" && status != "resolved") {
    return std::unexpected(
        Invalid(fmt::format("`status` is '{}', expected firing or resolved", status)));
  }
  alert.status = status == "firing" ? AlertStatus::kFiring : AlertStatus::kResolved;
  auto labels = ReferenceStringMap(item, "labels");
  if (!labels) return std::unexpected(labels.error());
  alert.labels = *labels;
  auto annotations = ReferenceStringMap(item, "annotations");
  if (!annotations) return std::unexpected(annotations.error());
  alert.annotations = *annotations;

  auto starts_at = core::ParseTime(ReferenceString(item, "startsAt"));
  if (!starts_at) {
    return std::unexpected(Invalid(fmt::format("`startsAt`: {}", starts_at.error().message)));
  }
  alert.starts_at = *starts_at;
  const std::string ends_at = ReferenceString(item, "endsAt");
  if (!ends_at.empty() && !ends_at.starts_with("0001-01-01")) {
    auto parsed = core::ParseTime(ends_at);
    if (!parsed) {
      return std::unexpected(Invalid(fmt::format("`endsAt`: {}", parsed.error().message)));
    }
    alert.ends_at = *parsed;
  }

  alert.generator_url = ReferenceString(item, "generatorURL");
  alert.fingerprint = ReferenceString(item, "fingerprint");
  if (alert.fingerprint.empty()) {
    alert.fingerprint = LabelFingerprint(alert.labels);
    alert.fingerprint_computed = true;
  }
  if (auto service = alert.labels.find(std::string(service_label)); service != alert.labels.end()) {
    alert.service = service->second;
  }
  return alert;
}

core::Result<WebhookPayload> ReferenceParse(std::string_view body, std::string_view service_label) {
  Json document;
  try {
    document = Json::parse(body);
  } catch (const Json::parse_error& error) {
    return std::unexpected(Invalid(fmt::format(
        "the webhook body is not valid JSON (byte {}); send Alertmanager's webhook payload",
        error.byte)));
  }
  if (!document.is_object()) {
    return std::unexpected(
        Invalid("the webhook body is not a JSON object; send Alertmanager's webhook payload"));
  }

  WebhookPayload payload;
  if (auto version = document.find("version"); version != document.end() && !version->is_string()) {
    return std::unexpected(Invalid(
        fmt::format("`version` is {}, expected the string \"4\"", ReferenceRender(*version))));
  }
  payload.version = ReferenceString(document, "version");
  if (payload.version.empty()) {
    return std::unexpected(Invalid(
        "`version` is missing or empty, expected the string \"4\" that Alertmanager 0.16 and "
        "later send"));
  }
  if (payload.version != "4") {
    return std::unexpected(
        Invalid(fmt::format("unsupported webhook payload version '{}': only version 4 "
                            "(Alertmanager 0.16 and later) is read",
                            payload.version)));
  }
  payload.group_key = ReferenceString(document, "groupKey");
  payload.receiver = ReferenceString(document, "receiver");
  payload.status = ReferenceString(document, "status");
  payload.external_url = ReferenceString(document, "externalURL");
  if (auto truncated = document.find("truncatedAlerts"); truncated != document.end()) {
    if (!IsTruncatedCount(*truncated)) {
      return std::unexpected(
          Invalid(fmt::format("`truncatedAlerts` is {}, expected an integer from 0 to "
                              "9007199254740991",
                              ReferenceRender(*truncated))));
    }
    payload.truncated_alerts = truncated->get<int64_t>();
  }

  auto alerts = document.find("alerts");
  if (alerts == document.end() || !alerts->is_array()) {
    return std::unexpected(Invalid("the webhook body has no `alerts` list"));
  }
  for (size_t i = 0; i < alerts->size(); ++i) {
    auto alert = ReferenceAlert((*alerts)[i], service_label);
    if (alert) {
      payload.alerts.push_back(*alert);
    } else {
      payload.invalid_alerts.push_back(InvalidAlert{.index = i, .reason = alert.error().message});
    }
  }
  return payload;
}

// Every field of a result as text, so that a difference shows in the failure message.
std::string Describe(const core::Result<WebhookPayload>& result) {
  if (!result) return "error: " + result.error().message;
  const WebhookPayload& payload = *result;
  std::string text =
      fmt::format("version={} group_key={} receiver={} status={} url={} truncated={}\n",
                  payload.version, payload.group_key, payload.receiver, payload.status,
                  payload.external_url, payload.truncated_alerts);
  for (const Alert& alert : payload.alerts) {
    text += fmt::format(
        "alert {} {} labels={} annotations={} ends={} url={} computed={} service={}\n",
        AlertStatusName(alert.status), alert.Identity(), alert.labels, alert.annotations,
        alert.ends_at ? core::FormatTime(*alert.ends_at) : std::string("-"), alert.generator_url,
        alert.fingerprint_computed, alert.service);
  }
  for (const InvalidAlert& invalid : payload.invalid_alerts) {
    text += fmt::format("invalid {}: {}\n", invalid.index, invalid.reason);
  }
  return text;
}

// Random webhook bodies near the real shape: members of the body and of each alert in any order,
// repeated, of the wrong type or nested, and sometimes cut short or with one byte changed.
class RandomBody {
 public:
  explicit RandomBody(uint64_t seed) : random_(seed) {}

  std::string Text() {
    if (Below(30) == 0) return Value(0);
    static const std::vector<std::string> kKeys = {"version", "groupKey",     "receiver",
                                                   "status",  "externalURL",  "truncatedAlerts",
                                                   "alerts",  "commonLabels", "x"};
    std::string text = R"({"version":"4","alerts":)" + BodyMember(0, "alerts");
    const size_t members = Below(8);
    for (size_t i = 0; i < members; ++i) {
      const std::string& key = kKeys[Below(kKeys.size())];
      text += ",\"" + key + "\":" + BodyMember(0, key);
    }
    text += "}";
    if (Below(15) == 0) text.resize(Below(text.size() + 1));
    if (Below(15) == 0 && !text.empty()) {
      static constexpr std::string_view kBytes = " {}[],:\"x1\\";
      text[Below(text.size())] = kBytes[Below(kBytes.size())];
    }
    return text;
  }

 private:
  size_t Below(size_t bound) {
    return std::uniform_int_distribution<size_t>(0, bound - 1)(random_);
  }

  std::string String() {
    static const char* const kStrings[] = {R"("4")",
                                           R"("3")",
                                           R"("")",
                                           R"("firing")",
                                           R"("resolved")",
                                           R"("web")",
                                           R"("caf\u00e9\n\"")",
                                           R"("2026-12-04T15:53:10Z")",
                                           R"("0001-01-01T00:00:00Z")",
                                           R"("2026-12-04T15:53:10.123456789+01:00")",
                                           R"("bad")",
                                           R"("f1")"};
    return kStrings[Below(std::size(kStrings))];
  }

  std::string Value(int depth) {
    switch (Below(depth > 3 ? 6 : 8)) {
      case 0:
        return "null";
      case 1:
        return Below(2) == 0 ? "true" : "false";
      case 2:
        return std::to_string(static_cast<int64_t>(random_()) >> Below(64));
      case 3:
        return std::to_string(random_());
      case 4:
        return "1.5e3";
      case 5:
        return String();
      case 6: {
        std::string text = "[";
        const size_t items = Below(4);
        for (size_t i = 0; i < items; ++i) {
          if (i > 0) text += ',';
          text += Value(depth + 1);
        }
        return text + "]";
      }
      default: {
        static const char* const kKeys[] = {"a", "version", "alerts", "labels", "status"};
        std::string text = "{";
        const size_t members = Below(4);
        for (size_t i = 0; i < members; ++i) {
          text += fmt::format("{}\"{}\":{}", i > 0 ? "," : "", kKeys[Below(std::size(kKeys))],
                              Value(depth + 1));
        }
        return text + "}";
      }
    }
  }

  std::string StringMap(int depth) {
    static const char* const kNames[] = {"service", "a", "b", "severity"};
    std::string text = "{";
    const size_t members = Below(6);
    for (size_t i = 0; i < members; ++i) {
      text += fmt::format("{}\"{}\":{}", i > 0 ? "," : "", kNames[Below(std::size(kNames))],
                          Below(5) == 0 ? Value(depth + 1) : String());
    }
    return text + "}";
  }

  std::string AlertMember(int depth, const std::string& key) {
    if (Below(6) == 0) return Value(depth);
    if (key == "labels" || key == "annotations") return Below(8) == 0 ? "null" : StringMap(depth);
    return String();
  }

  std::string Alert(int depth) {
    if (Below(10) == 0) return Value(depth);
    static const std::vector<std::string> kKeys = {"status",      "labels", "annotations",
                                                   "startsAt",    "endsAt", "generatorURL",
                                                   "fingerprint", "x"};
    std::string text = fmt::format(R"({{"status":"{}","startsAt":"2026-12-04T15:53:10Z")",
                                   Below(2) == 0 ? "firing" : "resolved");
    const size_t members = Below(8);
    for (size_t i = 0; i < members; ++i) {
      const std::string& key = kKeys[Below(kKeys.size())];
      text += ",\"" + key + "\":" + AlertMember(depth, key);
    }
    return text + "}";
  }

  std::string BodyMember(int depth, const std::string& key) {
    if (Below(8) == 0) return Value(depth);
    if (key == "alerts") {
      std::string text = "[";
      const size_t items = Below(5);
      for (size_t i = 0; i < items; ++i) {
        if (i > 0) text += ',';
        text += Alert(depth + 1);
      }
      return text + "]";
    }
    if (key == "truncatedAlerts") return Below(2) == 0 ? "7" : Value(depth);
    if (key == "version") return Below(5) == 0 ? String() : R"("4")";
    return String();
  }

  std::mt19937_64 random_;
};

TEST(AlertmanagerDecoder, MatchesDocumentDecoderOnRandomBodies) {
  RandomBody generator(20261205);
  int accepted = 0;
  int rejected = 0;
  int valid_alerts = 0;
  int invalid_alerts = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string body = generator.Text();
    const auto decoded = ParseAlertmanagerWebhook(body, "service");
    const auto reference = ReferenceParse(body, "service");
    ASSERT_EQ(Describe(decoded), Describe(reference)) << body;
    if (decoded) {
      ++accepted;
      valid_alerts += static_cast<int>(decoded->alerts.size());
      invalid_alerts += static_cast<int>(decoded->invalid_alerts.size());
    } else {
      ++rejected;
    }
  }
  // Each outcome must be common, or the comparison proves little.
  EXPECT_GT(accepted, 5000);
  EXPECT_GT(rejected, 2000);
  EXPECT_GT(valid_alerts, 5000);
  EXPECT_GT(invalid_alerts, 5000);
}

}  // namespace
}  // namespace backout::signals
