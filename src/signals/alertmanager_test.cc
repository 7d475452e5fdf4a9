#include "signals/alertmanager.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace backout::signals
