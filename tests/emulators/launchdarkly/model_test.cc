// The emulator's API over HTTP: the answers a LaunchDarkly client relies on, including its
// errors. node_client_test.cc proves the same routes with LaunchDarkly's own client.

#include <httplib.h>

#include <gtest/gtest.h>

#include <thread>

#include "emulators/launchdarkly/emulator.h"

namespace backout::emulators::launchdarkly {
namespace {

using nlohmann::json;

constexpr const char* kToken = "api-writer-token-0001";
constexpr const char* kReaderToken = "api-reader-token-0002";
constexpr const char* kSemantic = "application/json; domain-model=launchdarkly.semanticpatch";

json State() {
  json production{{"on", true},
                  {"offVariation", 1},
                  {"fallthrough", {{"variation", 0}}},
                  {"targets", {{{"values", {"qa"}}, {"variation", 0}}}},
                  {"rules", {{{"variation", 0}, {"clauses", json::array()}}}}};
  json dependent{{"on", true},
                 {"offVariation", 1},
                 {"prerequisites", {{{"key", "checkout"}, {"variation", 0}}}}};
  return json{
      {"tokens",
       {{{"token", kToken}, {"name", "backout"}, {"member", {{"email", "ops@example.com"}}}},
        {{"token", kReaderToken}, {"name", "reader"}, {"write", false}}}},
      {"flags",
       {{{"key", "checkout"}, {"name", "Checkout"}, {"environments", {{"production", production}}}},
        {{"key", "upsell"}, {"environments", {{"production", dependent}}}}}}};
}

class EmulatorApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto emulator = Emulator::Create(State());
    ASSERT_TRUE(emulator.has_value()) << emulator.error();
    emulator_ = std::move(*emulator);
    ASSERT_TRUE(emulator_->Start(0).has_value());
    client_ = std::make_unique<httplib::Client>("127.0.0.1", emulator_->port());
  }

  httplib::Result Get(const std::string& path, const char* token = kToken) {
    return client_->Get(path, httplib::Headers{{"Authorization", token}});
  }

  httplib::Result Patch(const json& body, const char* content_type = kSemantic,
                        const char* token = kToken, const std::string& query = "") {
    return client_->Patch("/api/v2/flags/default/checkout" + query,
                          httplib::Headers{{"Authorization", token}}, body.dump(), content_type);
  }

  static json TurnOff(std::string comment = "") {
    json body{{"environmentKey", "production"}, {"instructions", {{{"kind", "turnFlagOff"}}}}};
    if (!comment.empty()) body["comment"] = comment;
    return body;
  }

  std::unique_ptr<Emulator> emulator_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(EmulatorApiTest, FlagReadShowsTargeting) {
  auto response = Get("/api/v2/flags/default/checkout?env=production");
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200);
  json flag = json::parse(response->body);
  EXPECT_EQ(flag["environments"].size(), 1u);
  json config = flag["environments"]["production"];
  EXPECT_TRUE(config["on"].get<bool>());
  EXPECT_EQ(config["offVariation"], 1);
  EXPECT_EQ(config["targets"].size(), 1u);
  EXPECT_TRUE(config["rules"][0].contains("_id"));
  EXPECT_EQ(flag["variations"].size(), 2u);
}

TEST_F(EmulatorApiTest, MissingOrUnknownTokenIs401) {
  auto response = Get("/api/v2/flags/default/checkout", "api-unknown");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 401);
  EXPECT_EQ(json::parse(response->body)["code"], "unauthorized");
}

TEST_F(EmulatorApiTest, UnknownFlagIs404) {
  auto response = Get("/api/v2/flags/default/nope");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(json::parse(response->body)["code"], "not_found");
}

TEST_F(EmulatorApiTest, SemanticTurnOffWritesAuditEntry) {
  auto response = Patch(TurnOff("incident INC-1 by alice"));
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  EXPECT_FALSE(json::parse(response->body)["environments"]["production"]["on"].get<bool>());

  auto listing = Get("/api/v2/auditlog?spec=proj/default:env/production:flag/checkout");
  ASSERT_TRUE(listing);
  json items = json::parse(listing->body)["items"];
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["comment"], "incident INC-1 by alice");
  EXPECT_EQ(items[0]["member"]["email"], "ops@example.com");
  EXPECT_EQ(items[0]["accesses"][0]["action"], "updateOn");
  EXPECT_FALSE(items[0].contains("currentVersion"));

  auto entry = Get("/api/v2/auditlog/" + items[0]["_id"].get<std::string>());
  ASSERT_TRUE(entry);
  json detail = json::parse(entry->body);
  EXPECT_TRUE(detail["previousVersion"]["environments"]["production"]["on"].get<bool>());
  EXPECT_FALSE(detail["currentVersion"]["environments"]["production"]["on"].get<bool>());
}

TEST_F(EmulatorApiTest, TurnOffTwiceRecordsOneChange) {
  ASSERT_EQ(Patch(TurnOff())->status, 200);
  ASSERT_EQ(Patch(TurnOff())->status, 200);
  auto listing = Get("/api/v2/auditlog");
  EXPECT_EQ(json::parse(listing->body)["items"].size(), 1u);
}

TEST_F(EmulatorApiTest, SemanticBodyAsPlainJsonIs400) {
  auto response = Patch(TurnOff(), "application/json");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400);
  EXPECT_EQ(
      json::parse(Get("/api/v2/flags/default/checkout")->body)["environments"]["production"]["on"],
      true);
}

TEST_F(EmulatorApiTest, JsonPatchWithFailedTestChangesNothing) {
  json patch{{"comment", "json patch"},
             {"patch",
              {{{"op", "test"}, {"path", "/environments/production/version"}, {"value", 99}},
               {{"op", "replace"}, {"path", "/environments/production/on"}, {"value", false}}}}};
  auto response = Patch(patch, "application/json");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400);
  EXPECT_EQ(json::parse(response->body)["code"], "patch_failed");

  patch["patch"][0]["value"] = 1;
  response = Patch(patch, "application/json");
  ASSERT_EQ(response->status, 200) << response->body;
  json config = json::parse(response->body)["environments"]["production"];
  EXPECT_FALSE(config["on"].get<bool>());
  EXPECT_EQ(config["version"], 2);
}

TEST_F(EmulatorApiTest, ReadOnlyTokenIs403) {
  auto response = Patch(TurnOff(), kSemantic, kReaderToken);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 403);
}

TEST_F(EmulatorApiTest, ApprovalEnvironmentIs405) {
  ASSERT_TRUE(emulator_->SetApprovalRequired("default", "production", true).has_value());
  auto response = Patch(TurnOff());
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 405);
  json body = json::parse(response->body);
  EXPECT_EQ(body["code"], "method_not_allowed");
  EXPECT_EQ(body["message"],
            "Flag configuration updates require approval: action 'updateOn' not allowed");
}

TEST_F(EmulatorApiTest, PendingChangeConflictNeedsIgnore) {
  ASSERT_TRUE(emulator_->SetPendingChange("default", "checkout", "production", true).has_value());
  EXPECT_EQ(Patch(TurnOff())->status, 400);
  EXPECT_EQ(Patch(TurnOff(), kSemantic, kToken, "?ignoreConflicts=true")->status, 200);
}

TEST_F(EmulatorApiTest, InjectedRateLimitSendsRetryAfter) {
  emulator_->FailNextCalls(
      InjectedFailure{"PATCH", "", ApiError{429, "rate_limited", "slow down", 2}, 1});
  auto response = Patch(TurnOff());
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 429);
  EXPECT_EQ(response->get_header_value("Retry-After"), "2");
  EXPECT_EQ(Patch(TurnOff())->status, 200);
}

TEST_F(EmulatorApiTest, RolloutWeightsMustAddUp) {
  json flag = json::parse(Get("/api/v2/flags/default/checkout")->body);
  std::string new_id = flag["variations"][0]["_id"];
  std::string old_id = flag["variations"][1]["_id"];
  json body{{"environmentKey", "production"},
            {"instructions",
             {{{"kind", "updateFallthroughVariationOrRollout"},
               {"rolloutWeights", {{new_id, 0}, {old_id, 90000}}}}}}};
  EXPECT_EQ(Patch(body)->status, 400);
  body["instructions"][0]["rolloutWeights"][old_id] = 100000;
  auto response = Patch(body);
  ASSERT_EQ(response->status, 200) << response->body;
  json fallthrough = json::parse(response->body)["environments"]["production"]["fallthrough"];
  EXPECT_EQ(fallthrough["rollout"]["variations"].size(), 2u);
}

TEST_F(EmulatorApiTest, DependentFlagsListsPrerequisiteUsers) {
  auto response = Get("/api/v2/flags/default/production/checkout/dependent-flags");
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200);
  json items = json::parse(response->body)["items"];
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["key"], "upsell");
}

TEST_F(EmulatorApiTest, AuditLogPagesWithBeforeAndLimit) {
  for (int i = 0; i < 3; ++i) {
    json body{{"environmentKey", "production"},
              {"instructions", {{{"kind", i % 2 == 0 ? "turnFlagOff" : "turnFlagOn"}}}}};
    ASSERT_EQ(Patch(body)->status, 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  json first = json::parse(Get("/api/v2/auditlog?limit=2")->body)["items"];
  ASSERT_EQ(first.size(), 2u);
  int64_t oldest = first[1]["date"];
  json second =
      json::parse(Get("/api/v2/auditlog?limit=2&before=" + std::to_string(oldest))->body)["items"];
  ASSERT_EQ(second.size(), 1u);
  EXPECT_LT(second[0]["date"].get<int64_t>(), oldest);
  EXPECT_EQ(Get("/api/v2/auditlog?limit=21")->status, 400);
}

}  // namespace
}  // namespace backout::emulators::launchdarkly
