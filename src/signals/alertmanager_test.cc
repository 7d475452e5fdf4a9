#include "signals/alertmanager.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include <fmt/format.h>

namespace backout::signals {
namespace {

// A version 4 body as Alertmanager 0.25 sends it, with one alert per argument.
std::string Body(const std::vector<nlohmann::json>& alerts, const nlohmann::json& common = {},
                 int truncated = 0) {
  nlohmann::json body = {{"version", "4"},
                         {"groupKey", "{}:{cluster=\"eu\"}"},
                         {"truncatedAlerts", truncated},
                         {"status", "firing"},
                         {"receiver", "backout"},
                         {"groupLabels", {{"cluster", "eu"}}},
                         {"commonLabels", common.is_null() ? nlohmann::json::object() : common},
                         {"commonAnnotations", nlohmann::json::object()},
                         {"externalURL", "http://127.0.0.1:9093"},
                         {"alerts", alerts}};
  return body.dump();
}

nlohmann::json AlertJson(const std::string& status, nlohmann::json labels,
                         const std::string& fingerprint = "56ce4798c45df6a4") {
  nlohmann::json alert = {{"status", status},
                          {"labels", std::move(labels)},
                          {"annotations", {{"summary", "error rate above SLO"}}},
                          {"startsAt", "2026-12-04T15:53:10.123456789+01:00"},
                          {"endsAt", "0001-01-01T00:00:00Z"},
                          {"generatorURL", "http://127.0.0.1:9090/graph"}};
  if (!fingerprint.empty()) alert["fingerprint"] = fingerprint;
  if (status == "resolved") alert["endsAt"] = "2026-12-04T16:00:00Z";
  return alert;
}

TEST(AlertmanagerWebhook, DecidesEachAlertOnItsOwnStatus) {
  // The group status is firing, but the second alert has resolved.
  auto payload = ParseAlertmanagerWebhook(
      Body({AlertJson("firing", {{"alertname", "A"}, {"service", "web"}}, "0000000000000001"),
            AlertJson("resolved", {{"alertname", "B"}, {"service", "web"}}, "0000000000000002")}),
      "service");
  ASSERT_TRUE(payload.has_value()) << payload.error().message;
  ASSERT_EQ(payload->alerts.size(), 2u);
  EXPECT_EQ(payload->status, "firing");
  EXPECT_EQ(payload->alerts[0].status, AlertStatus::kFiring);
  EXPECT_EQ(payload->alerts[1].status, AlertStatus::kResolved);
  EXPECT_TRUE(payload->alerts[1].ends_at.has_value());
}

TEST(AlertmanagerWebhook, MapsServiceFromEachAlertsLabels) {
  // commonLabels lack the service label, as with group_by [cluster].
  auto payload = ParseAlertmanagerWebhook(
      Body({AlertJson("firing", {{"alertname", "X"}, {"deployment", "web"}, {"svc", "web"}}, "a1"),
            AlertJson("firing", {{"alertname", "Y"}, {"svc", "api"}}, "a2"),
            AlertJson("firing", {{"alertname", "Z"}}, "a3")},
           {{"cluster", "eu"}}),
      "svc");
  ASSERT_TRUE(payload.has_value()) << payload.error().message;
  ASSERT_EQ(payload->alerts.size(), 3u);
  EXPECT_EQ(payload->alerts[0].service, "web");
  EXPECT_EQ(payload->alerts[1].service, "api");
  EXPECT_EQ(payload->alerts[2].service, "");
}

TEST(AlertmanagerWebhook, IgnoresCommonLabelsForService) {
  auto payload = ParseAlertmanagerWebhook(
      Body({AlertJson("firing", {{"alertname", "X"}})}, {{"service", "web"}}), "service");
  ASSERT_TRUE(payload.has_value());
  ASSERT_EQ(payload->alerts.size(), 1u);
  EXPECT_EQ(payload->alerts[0].service, "");
}

TEST(AlertmanagerWebhook, RecordsTruncatedAlerts) {
  auto payload = ParseAlertmanagerWebhook(
      Body({AlertJson("firing", {{"service", "web"}})}, {}, 19900), "service");
  ASSERT_TRUE(payload.has_value());
  EXPECT_EQ(payload->truncated_alerts, 19900);
}

TEST(AlertmanagerWebhook, ZeroEndsAtMeansNotEnded) {
  auto payload =
      ParseAlertmanagerWebhook(Body({AlertJson("firing", {{"service", "web"}})}), "service");
  ASSERT_TRUE(payload.has_value());
  EXPECT_FALSE(payload->alerts[0].ends_at.has_value());
}

TEST(AlertmanagerWebhook, IdentityIsFingerprintAndStart) {
  auto payload =
      ParseAlertmanagerWebhook(Body({AlertJson("firing", {{"service", "web"}})}), "service");
  ASSERT_TRUE(payload.has_value());
  // The +01:00 offset is converted to UTC; digits past microseconds are dropped.
  EXPECT_EQ(payload->alerts[0].Identity(), "56ce4798c45df6a4@2026-12-04T14:53:10.123456Z");
}

TEST(AlertmanagerWebhook, ComputesMissingFingerprint) {
  auto first = ParseAlertmanagerWebhook(
      Body({AlertJson("firing", {{"service", "web"}, {"alertname", "A"}}, "")}), "service");
  auto second = ParseAlertmanagerWebhook(
      Body({AlertJson("firing", {{"alertname", "A"}, {"service", "web"}}, "")}), "service");
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_TRUE(first->alerts[0].fingerprint_computed);
  EXPECT_EQ(first->alerts[0].fingerprint.size(), 16u);
  EXPECT_EQ(first->alerts[0].fingerprint, second->alerts[0].fingerprint);
}

TEST(AlertmanagerWebhook, KeepsValidAlertsBesideInvalidOne) {
  nlohmann::json broken = AlertJson("firing", {{"service", "web"}}, "b1");
  broken["startsAt"] = "yesterday";
  auto payload = ParseAlertmanagerWebhook(
      Body({broken, AlertJson("firing", {{"service", "web"}}, "b2")}), "service");
  ASSERT_TRUE(payload.has_value());
  ASSERT_EQ(payload->alerts.size(), 1u);
  ASSERT_EQ(payload->invalid_alerts.size(), 1u);
  EXPECT_EQ(payload->invalid_alerts[0].index, 0u);
  EXPECT_NE(payload->invalid_alerts[0].reason.find("startsAt"), std::string::npos);
}

TEST(AlertmanagerWebhook, RejectsOtherVersion) {
  auto payload = ParseAlertmanagerWebhook(R"({"version":"3","alerts":[]})", "service");
  ASSERT_FALSE(payload.has_value());
  EXPECT_EQ(payload.error().code, core::ErrorCode::kInvalidArgument);
}

TEST(AlertmanagerWebhook, RejectsBodyThatIsNotJson) {
  auto payload = ParseAlertmanagerWebhook("{\"version\":", "service");
  ASSERT_FALSE(payload.has_value());
  EXPECT_EQ(payload.error().code, core::ErrorCode::kInvalidArgument);
}

// The streaming decoder reads the body in one pass, so the tests below feed it bodies whose
// members come in unusual orders, nest deeply or repeat.

// An alert as raw JSON text, so that tests can place members in any order.
constexpr std::string_view kRawAlert =
    R"({"status":"firing","labels":{"service":"web"},"annotations":{},)"
    R"("startsAt":"2026-12-04T15:53:10Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"f1"})";

// A body made of `before`, kRawAlert and `after`.
std::string AroundRawAlert(std::string_view before, std::string_view after) {
  std::string body(before);
  body += kRawAlert;
  body += after;
  return body;
}

TEST(AlertmanagerWebhook, SkipsNestedUnknownMembers) {
  const std::string body =
      R"({"version":"4","extra":{"a":[1,{"b":[[],{}]},"alerts"],"alerts":{"c":null}},)"
      R"("list":[[{"version":"3"}],{"alerts":[]}],"receiver":"backout","alerts":[)"
      R"({"status":"firing","unknown":{"labels":{"x":1},"status":"bad","deep":[[[{"k":[]}]]]},)"
      R"("labels":{"service":"web"},"more":[{"startsAt":"never"},[1,2,3]],)"
      R"("startsAt":"2026-12-04T15:53:10Z","fingerprint":"f1","tail":{}}],"after":[{}]})";
  auto payload = ParseAlertmanagerWebhook(body, "service");
  ASSERT_TRUE(payload.has_value()) << payload.error().message;
  EXPECT_EQ(payload->receiver, "backout");
  ASSERT_EQ(payload->alerts.size(), 1u);
  EXPECT_TRUE(payload->invalid_alerts.empty());
  EXPECT_EQ(payload->alerts[0].labels, (std::map<std::string, std::string>{{"service", "web"}}));
  EXPECT_EQ(payload->alerts[0].service, "web");
  EXPECT_EQ(payload->alerts[0].fingerprint, "f1");
  EXPECT_EQ(core::FormatTime(payload->alerts[0].starts_at), "2026-12-04T15:53:10.000000Z");
}

TEST(AlertmanagerWebhook, ReadsAlertsBeforeVersion) {
  const std::string body =
      AroundRawAlert(R"({"alerts":[)", R"(],"truncatedAlerts":3,"status":"firing","version":"4"})");
  auto payload = ParseAlertmanagerWebhook(body, "service");
  ASSERT_TRUE(payload.has_value()) << payload.error().message;
  ASSERT_EQ(payload->alerts.size(), 1u);
  EXPECT_EQ(payload->alerts[0].fingerprint, "f1");
  EXPECT_EQ(payload->truncated_alerts, 3);
  EXPECT_EQ(payload->status, "firing");
}

TEST(AlertmanagerWebhook, RejectsOtherVersionAfterAlerts) {
  const std::string body = AroundRawAlert(R"({"alerts":[)", R"(],"version":"3"})");
  auto payload = ParseAlertmanagerWebhook(body, "service");
  ASSERT_FALSE(payload.has_value());
  EXPECT_EQ(payload.error().message,
            "unsupported webhook payload version '3': only version 4 (Alertmanager 0.16 and "
            "later) is read");
}

TEST(AlertmanagerWebhook, NamesMissingVersion) {
  for (const std::string tail : {R"(]})", R"(],"version":""})"}) {
    auto payload = ParseAlertmanagerWebhook(AroundRawAlert(R"({"alerts":[)", tail), "service");
    ASSERT_FALSE(payload.has_value()) << tail;
    EXPECT_EQ(payload.error().message,
              "`version` is missing or empty, expected the string \"4\" that Alertmanager 0.16 "
              "and later send");
  }
}

TEST(AlertmanagerWebhook, IndexesInvalidAlertBetweenValid) {
  nlohmann::json broken = AlertJson("firing", {{"service", "web"}}, "b2");
  broken["labels"]["team"] = 7;
  auto payload =
      ParseAlertmanagerWebhook(Body({AlertJson("firing", {{"service", "web"}}, "b1"), broken,
                                     AlertJson("resolved", {{"service", "api"}}, "b3")}),
                               "service");
  ASSERT_TRUE(payload.has_value()) << payload.error().message;
  ASSERT_EQ(payload->alerts.size(), 2u);
  EXPECT_EQ(payload->alerts[0].fingerprint, "b1");
  EXPECT_EQ(payload->alerts[1].fingerprint, "b3");
  EXPECT_EQ(payload->alerts[1].service, "api");
  ASSERT_EQ(payload->invalid_alerts.size(), 1u);
  EXPECT_EQ(payload->invalid_alerts[0].index, 1u);
  EXPECT_EQ(payload->invalid_alerts[0].reason, "`labels.team` is not a string");
}

TEST(AlertmanagerWebhook, RejectsAlertsThatAreNotObjects) {
  const std::string body =
      AroundRawAlert(R"({"version":"4","alerts":[1,[{"status":"firing"}],null,)", R"(,"x"]})");
  auto payload = ParseAlertmanagerWebhook(body, "service");
  ASSERT_TRUE(payload.has_value()) << payload.error().message;
  ASSERT_EQ(payload->alerts.size(), 1u);
  ASSERT_EQ(payload->invalid_alerts.size(), 4u);
  const std::vector<size_t> expected_indexes = {0, 1, 2, 4};
  for (size_t i = 0; i < expected_indexes.size(); ++i) {
    EXPECT_EQ(payload->invalid_alerts[i].index, expected_indexes[i]);
    EXPECT_EQ(payload->invalid_alerts[i].reason, "the alert is not an object");
  }
}

TEST(AlertmanagerWebhook, SkipsDeeplyNestedMember) {
  constexpr int kDepth = 100000;
  std::string nested;
  for (int i = 0; i < kDepth; ++i) nested += i % 2 == 0 ? "[" : "{\"k\":";
  nested += "null";
  for (int i = kDepth - 1; i >= 0; --i) nested += i % 2 == 0 ? "]" : "}";
  std::string alert(kRawAlert);
  alert.insert(1, "\"deep\":" + nested + ",");
  const std::string body = "{\"top\":" + nested + ",\"version\":\"4\",\"alerts\":[" + alert + "]}";
  auto payload = ParseAlertmanagerWebhook(body, "service");
  ASSERT_TRUE(payload.has_value()) << payload.error().message;
  ASSERT_EQ(payload->alerts.size(), 1u);
  EXPECT_TRUE(payload->invalid_alerts.empty());
}

TEST(AlertmanagerWebhook, DecodesEscapesAndUtf8InLabels) {
  // \u00e9 is é, \ud83d\ude80 is the surrogate pair of U+1F680, and ü is sent as raw UTF-8.
  const std::string body =
      R"({"version":"4","alerts":[{"status":"firing","startsAt":"2026-12-04T15:53:10Z",)"
      R"("labels":{"service":"caf\u00e9","path":"C:\\tmp\\\"x\"\n\t/","rocket":"\ud83d\ude80",)"
      "\"m\xc3\xbcnchen\":\"gr\xc3\xbc\xc3\x9f\"}}]}";
  auto payload = ParseAlertmanagerWebhook(body, "service");
  ASSERT_TRUE(payload.has_value()) << payload.error().message;
  ASSERT_EQ(payload->alerts.size(), 1u);
  const auto& labels = payload->alerts[0].labels;
  EXPECT_EQ(labels.at("service"), "caf\xc3\xa9");
  EXPECT_EQ(labels.at("path"), "C:\\tmp\\\"x\"\n\t/");
  EXPECT_EQ(labels.at("rocket"), "\xf0\x9f\x9a\x80");
  EXPECT_EQ(labels.at("m\xc3\xbcnchen"), "gr\xc3\xbc\xc3\x9f");
  EXPECT_EQ(payload->alerts[0].service, "caf\xc3\xa9");
}

TEST(AlertmanagerWebhook, RejectsInvalidUtf8) {
  const std::string body = "{\"version\":\"4\",\"alerts\":[],\"receiver\":\"\xc3\x28\"}";
  auto payload = ParseAlertmanagerWebhook(body, "service");
  ASSERT_FALSE(payload.has_value());
  EXPECT_NE(payload.error().message.find("not valid JSON"), std::string::npos);
}

TEST(AlertmanagerWebhook, HandlesNumbersInStringFields) {
  nlohmann::json numeric_fingerprint = AlertJson("firing", {{"service", "web"}}, "");
  numeric_fingerprint["fingerprint"] = 12345;
  numeric_fingerprint["generatorURL"] = 1.5;
  nlohmann::json numeric_status = AlertJson("firing", {{"service", "web"}}, "s2");
  numeric_status["status"] = 1;
  nlohmann::json numeric_annotation = AlertJson("firing", {{"service", "web"}}, "s3");
  numeric_annotation["annotations"] = {{"summary", "x"}, {"runbook", true}};
  nlohmann::json numeric_starts_at = AlertJson("firing", {{"service", "web"}}, "s4");
  numeric_starts_at["startsAt"] = 1764863590;
  nlohmann::json numeric_labels = AlertJson("firing", {{"service", "web"}}, "s5");
  numeric_labels["labels"] = 3;
  auto payload =
      ParseAlertmanagerWebhook(Body({numeric_fingerprint, numeric_status, numeric_annotation,
                                     numeric_starts_at, numeric_labels}),
                               "service");
  ASSERT_TRUE(payload.has_value()) << payload.error().message;
  ASSERT_EQ(payload->alerts.size(), 1u);
  EXPECT_TRUE(payload->alerts[0].fingerprint_computed);
  EXPECT_EQ(payload->alerts[0].generator_url, "");
  ASSERT_EQ(payload->invalid_alerts.size(), 4u);
  EXPECT_EQ(payload->invalid_alerts[0].reason, "`status` is '', expected firing or resolved");
  EXPECT_EQ(payload->invalid_alerts[1].reason, "`annotations.runbook` is not a string");
  EXPECT_NE(payload->invalid_alerts[2].reason.find("`startsAt`: "), std::string::npos);
  EXPECT_EQ(payload->invalid_alerts[3].reason, "`labels` is not an object");
}

TEST(AlertmanagerWebhook, ReportsSmallestNonStringLabel) {
  nlohmann::json alert = AlertJson("firing", {{"service", "web"}, {"zone", 1}, {"app", {1}}});
  auto payload = ParseAlertmanagerWebhook(Body({alert}), "service");
  ASSERT_TRUE(payload.has_value()) << payload.error().message;
  ASSERT_EQ(payload->invalid_alerts.size(), 1u);
  EXPECT_EQ(payload->invalid_alerts[0].reason, "`labels.app` is not a string");
}

TEST(AlertmanagerWebhook, ReadsNullLabelsAsEmpty) {
  nlohmann::json alert = AlertJson("firing", nullptr, "");
  alert["annotations"] = nullptr;
  auto payload = ParseAlertmanagerWebhook(Body({alert}), "service");
  ASSERT_TRUE(payload.has_value()) << payload.error().message;
  ASSERT_EQ(payload->alerts.size(), 1u);
  EXPECT_TRUE(payload->alerts[0].labels.empty());
  EXPECT_TRUE(payload->alerts[0].annotations.empty());
  EXPECT_EQ(payload->alerts[0].fingerprint, LabelFingerprint({}));
}

TEST(AlertmanagerWebhook, RejectsLabelsList) {
  nlohmann::json alert = AlertJson("firing", nlohmann::json::array({"service", "web"}));
  auto payload = ParseAlertmanagerWebhook(Body({alert}), "service");
  ASSERT_TRUE(payload.has_value()) << payload.error().message;
  ASSERT_EQ(payload->invalid_alerts.size(), 1u);
  EXPECT_EQ(payload->invalid_alerts[0].reason, "`labels` is not an object");
}

TEST(AlertmanagerWebhook, LastRepeatedKeyWins) {
  const std::string body =
      R"({"version":"3","alerts":[{"status":"firing"}],"version":"4","alerts":[)"
      R"({"status":"resolved","labels":{"service":"a","team":1},"status":"firing",)"
      R"("labels":{"service":"b","service":"c","team":2,"team":"db"},"fingerprint":"f1",)"
      R"("startsAt":"yesterday","startsAt":"2026-12-04T15:53:10Z","fingerprint":7}],)"
      R"("truncatedAlerts":"many","truncatedAlerts":5})";
  auto payload = ParseAlertmanagerWebhook(body, "service");
  ASSERT_TRUE(payload.has_value()) << payload.error().message;
  EXPECT_EQ(payload->version, "4");
  EXPECT_EQ(payload->truncated_alerts, 5);
  EXPECT_TRUE(payload->invalid_alerts.empty());
  ASSERT_EQ(payload->alerts.size(), 1u);
  const Alert& alert = payload->alerts[0];
  EXPECT_EQ(alert.status, AlertStatus::kFiring);
  EXPECT_EQ(alert.labels, (std::map<std::string, std::string>{{"service", "c"}, {"team", "db"}}));
  EXPECT_EQ(alert.service, "c");
  EXPECT_TRUE(alert.fingerprint_computed);
}

TEST(AlertmanagerWebhook, RepeatedAlertsKeyReplacesList) {
  const std::string body = AroundRawAlert(R"({"version":"4","alerts":[)", R"(,5],"alerts":{}})");
  auto payload = ParseAlertmanagerWebhook(body, "service");
  ASSERT_FALSE(payload.has_value());
  EXPECT_EQ(payload.error().message, "the webhook body has no `alerts` list");
}

TEST(AlertmanagerWebhook, RejectsEveryTruncatedBody) {
  const std::string body = Body({AlertJson("firing", {{"service", "web"}, {"a", "x\\\"y"}}),
                                 AlertJson("resolved", {{"service", "api"}})});
  ASSERT_TRUE(ParseAlertmanagerWebhook(body, "service").has_value());
  for (size_t length = 0; length < body.size(); ++length) {
    auto payload = ParseAlertmanagerWebhook(std::string_view(body).substr(0, length), "service");
    ASSERT_FALSE(payload.has_value()) << "prefix of " << length << " bytes was accepted";
    EXPECT_EQ(payload.error().code, core::ErrorCode::kInvalidArgument);
    EXPECT_EQ(payload.error().message,
              fmt::format("the webhook body is not valid JSON (byte {}); send Alertmanager's "
                          "webhook payload",
                          length + 1))
        << "prefix of " << length << " bytes";
  }
}

TEST(AlertmanagerWebhook, ReportsJsonErrorBeforeShape) {
  // A body that would also fail the version and list checks reports the syntax error first.
  auto truncated = ParseAlertmanagerWebhook(R"({"version":"3","alerts":[)", "service");
  ASSERT_FALSE(truncated.has_value());
  EXPECT_NE(truncated.error().message.find("not valid JSON (byte 26)"), std::string::npos)
      << truncated.error().message;

  auto trailing = ParseAlertmanagerWebhook(R"({"version":"4","alerts":[]} x)", "service");
  ASSERT_FALSE(trailing.has_value());
  EXPECT_NE(trailing.error().message.find("not valid JSON"), std::string::npos);

  auto list = ParseAlertmanagerWebhook(R"([{"version":"4","alerts":[]}])", "service");
  ASSERT_FALSE(list.has_value());
  EXPECT_EQ(list.error().message,
            "the webhook body is not a JSON object; send Alertmanager's webhook payload");

  auto scalar = ParseAlertmanagerWebhook(R"("version")", "service");
  ASSERT_FALSE(scalar.has_value());
  EXPECT_NE(scalar.error().message.find("not a JSON object"), std::string::npos);
}

TEST(AlertmanagerWebhook, RejectsOverflowingNumber) {
  // nlohmann reports this overflow as out_of_range, not as parse_error, and the decoder must still
  // name it invalid JSON.
  auto payload =
      ParseAlertmanagerWebhook(R"({"version":"4","truncatedAlerts":1e999,"alerts":[]})", "service");
  ASSERT_FALSE(payload.has_value());
  EXPECT_NE(payload.error().message.find("not valid JSON (byte 38)"), std::string::npos)
      << payload.error().message;
}

TEST(AlertmanagerWebhook, RejectsMissingAlertsList) {
  auto payload = ParseAlertmanagerWebhook(R"({"version":"4","alert":[]})", "service");
  ASSERT_FALSE(payload.has_value());
  EXPECT_EQ(payload.error().message, "the webhook body has no `alerts` list");
}

TEST(AlertmanagerWebhook, TruncatedAlertsRange) {
  const std::pair<std::string, int64_t> accepted[] = {
      {"0", 0}, {"-0", 0}, {"19900", 19900}, {"9007199254740991", 9007199254740991}};
  for (const auto& [text, expected] : accepted) {
    auto payload = ParseAlertmanagerWebhook(
        fmt::format(R"({{"version":"4","truncatedAlerts":{},"alerts":[]}})", text), "service");
    ASSERT_TRUE(payload.has_value()) << text << ": " << payload.error().message;
    EXPECT_EQ(payload->truncated_alerts, expected) << text;
  }
}

TEST(AlertmanagerWebhook, RejectsInvalidTruncatedAlerts) {
  const std::pair<std::string, std::string> rejected[] = {
      {"18446744073709551615", "18446744073709551615"},
      {"9223372036854775808", "9223372036854775808"},
      {"9007199254740992", "9007199254740992"},
      {"-5", "-5"},
      {"-9223372036854775808", "-9223372036854775808"},
      {"2.5", "2.5"},
      {"1e30", "1e+30"},
      {"99999999999999999999", "1e+20"},
      {R"("7")", R"("7")"},
      {"true", "true"},
      {"null", "null"},
      {"[1]", "an array"},
      {"{}", "an object"}};
  for (const auto& [text, named] : rejected) {
    auto payload = ParseAlertmanagerWebhook(
        fmt::format(R"({{"version":"4","truncatedAlerts":{},"alerts":[]}})", text), "service");
    ASSERT_FALSE(payload.has_value()) << text;
    EXPECT_EQ(payload.error().code, core::ErrorCode::kInvalidArgument) << text;
    EXPECT_EQ(payload.error().message,
              fmt::format("`truncatedAlerts` is {}, expected an integer from 0 to "
                          "9007199254740991",
                          named));
  }
}

TEST(AlertmanagerWebhook, LongTruncatedAlertsIsCut) {
  const std::string long_text(200, 'x');
  auto payload = ParseAlertmanagerWebhook(
      fmt::format(R"({{"version":"4","truncatedAlerts":"{}","alerts":[]}})", long_text), "service");
  ASSERT_FALSE(payload.has_value());
  const std::string cut = fmt::format(R"(is "{}...,)", std::string(60, 'x'));
  EXPECT_NE(payload.error().message.find(cut), std::string::npos) << payload.error().message;
}

TEST(AlertmanagerWebhook, RejectsNumericVersion) {
  auto payload = ParseAlertmanagerWebhook(R"({"version":4,"alerts":[]})", "service");
  ASSERT_FALSE(payload.has_value());
  EXPECT_EQ(payload.error().message, R"(`version` is 4, expected the string "4")");

  auto listed = ParseAlertmanagerWebhook(R"({"version":["4"],"alerts":[]})", "service");
  ASSERT_FALSE(listed.has_value());
  EXPECT_EQ(listed.error().message, R"(`version` is an array, expected the string "4")");
}

}  // namespace
}  // namespace backout::signals
