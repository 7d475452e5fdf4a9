// The Unleash provider against a real Unleash server (unleash-server 7.5.1 on Node, with its
// database on the test PostgreSQL cluster), with evaluations by Unleash's own Node SDK. Each test
// makes its own flag, so the tests share one server per test process.

#include "providers/unleash/unleash_provider.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "http/client.h"
#include "providers/registry.h"
#include "support/unleash_server.h"

namespace backout::providers::unleash {
namespace {

using nlohmann::json;
using testing::UnleashServer;

class SystemClock final : public core::Clock {
 public:
  core::Time Now() const override {
    return std::chrono::time_point_cast<core::Duration>(std::chrono::system_clock::now());
  }
};

// A response of the Admin API, for test setup.
struct Reply {
  int status = 0;
  json body;
};

class UnleashProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = UnleashServer::Shared();
    ASSERT_TRUE(server.has_value()) << server.error();
    server_ = *server;
    auto http = http::Client::Create(http::ClientOptions{});
    ASSERT_TRUE(http.has_value()) << http.error().message;
    http_ = std::move(*http);
    static std::atomic<int> counter = 0;
    flag_ = fmt::format("checkout.flow-{}-{}", getpid(), counter.fetch_add(1));
  }

  Reply Admin(http::Method method, const std::string& path, const json& body = nullptr,
              const std::string& token = "") {
    http::Request request;
    request.method = method;
    request.url = server_->url() + path;
    request.headers.Add("Authorization", token.empty() ? server_->admin_token() : token);
    if (!body.is_null()) {
      request.headers.Add("Content-Type", "application/json");
      request.body = body.dump();
    }
    auto response = http_->Send(request);
    if (!response) return Reply{0, json{{"error", response.error().message}}};
    Reply reply{response->status, json::object()};
    if (!response->body.empty()) reply.body = json::parse(response->body, nullptr, false);
    return reply;
  }

  std::string FeaturePath(const std::string& flag) const {
    return "/api/admin/projects/default/features/" + flag;
  }

  // Creates `flag` with one flexibleRollout strategy (`rollout` %, one variant) in production,
  // turned on there.
  void CreateFlag(const std::string& flag, const std::string& rollout = "100") {
    Reply created = Admin(http::Method::kPost, "/api/admin/projects/default/features",
                          json{{"name", flag}, {"type", "release"}});
    ASSERT_EQ(created.status, 201) << created.body.dump();
    Reply strategy = Admin(
        http::Method::kPost, FeaturePath(flag) + "/environments/production/strategies",
        json{{"name", "flexibleRollout"},
             {"parameters", {{"rollout", rollout}, {"stickiness", "default"}, {"groupId", flag}}},
             {"variants", json::array({{{"name", "blue"},
                                        {"weight", 1000},
                                        {"stickiness", "default"},
                                        {"weightType", "variable"}}})}});
    ASSERT_EQ(strategy.status, 200) << strategy.body.dump();
    Reply on = Admin(http::Method::kPost, FeaturePath(flag) + "/environments/production/on");
    ASSERT_EQ(on.status, 200) << on.body.dump();
  }

  json Settings(json extra = json::object()) const {
    json settings{{"url", server_->url()},
                  {"flag", flag_},
                  {"environment", "production"},
                  {"credentials", {{"api_token", "env:UNUSED"}}}};
    settings.update(extra);
    return settings;
  }

  std::unique_ptr<Provider> MakeProvider(json settings, std::string token = "") {
    SecretValues secrets{{"api_token", token.empty() ? server_->admin_token() : token}};
    // The backend token is for production only, so other bindings go without it.
    if (settings.contains("sdk_evaluation")) secrets["sdk_token"] = server_->backend_token();
    auto provider = Registry::Create("unleash", "checkout", settings, secrets, clock_);
    EXPECT_TRUE(provider.has_value()) << provider.error().message;
    return provider ? std::move(*provider) : nullptr;
  }

  json SdkCommand() const {
    return json::array(
        {"/usr/bin/node", (UnleashServer::ComponentDir() / "evaluate-flag.mjs").string()});
  }

  ExecutionContext Context() const {
    ExecutionContext context;
    context.incident_id = "INC-7";
    context.executor = "alice@example.com";
    return context;
  }

  std::string EnvironmentState(const std::string& flag) {
    Reply feature = Admin(http::Method::kGet, FeaturePath(flag));
    for (const json& environment : feature.body.value("environments", json::array())) {
      if (environment.value("name", "") == "production") {
        return environment.value("enabled", false) ? "on" : "off";
      }
    }
    return "missing";
  }

  UnleashServer* server_ = nullptr;
  std::unique_ptr<http::Client> http_;
  SystemClock clock_;
  std::string flag_;
};

TEST_F(UnleashProviderTest, TurnsFlagOffWithTaggedEvent) {
  CreateFlag(flag_);
  auto provider = MakeProvider(Settings());
  ASSERT_NE(provider, nullptr);

  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_EQ(plan->target_version, "off");
  EXPECT_EQ(plan->action["type"], "turn_off");
  EXPECT_EQ(plan->action["from_version"], "on");

  auto result = provider->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kRolledBack) << result->message;
  EXPECT_EQ(result->live_version, "off");
  EXPECT_EQ(EnvironmentState(flag_), "off");
  EXPECT_TRUE(result->details["accepted_at"].is_string());

  auto record = provider->ReadBack(*result);
  ASSERT_TRUE(record.has_value()) << record.error().message;
  EXPECT_EQ(record->version, "off");
  EXPECT_EQ(record->details["event"]["type"], "feature-environment-disabled");
  EXPECT_EQ(record->details["who"], "admin");  // the name Unleash gives INIT_ADMIN_API_TOKENS
  EXPECT_TRUE(record->details["when"].is_string());
  EXPECT_EQ(record->details["event_carries_audit_tag"], true);
  json tags = record->details["event"]["tags"];
  EXPECT_NE(std::find(tags.begin(), tags.end(), "simple:backout INC-7 by alice@example.com"),
            tags.end())
      << tags.dump();
}

TEST_F(UnleashProviderTest, TranscriptHidesToken) {
  CreateFlag(flag_);
  auto provider = MakeProvider(Settings());
  ASSERT_NE(provider, nullptr);
  auto plan = provider->MakePlan("off");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  auto result = provider->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;

  std::string transcript = ToJson(result->transcript).dump();
  EXPECT_FALSE(result->transcript.entries.empty());
  EXPECT_EQ(transcript.find(server_->admin_token()), std::string::npos);
  EXPECT_EQ(result->message.find(server_->admin_token()), std::string::npos);
}

TEST_F(UnleashProviderTest, UnknownTagTypeStillTurnsOff) {
  CreateFlag(flag_);
  auto provider = MakeProvider(Settings({{"audit_tag_type", "no-such-type"}}));
  ASSERT_NE(provider, nullptr);
  auto plan = provider->MakePlan("off");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;

  auto result = provider->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kRolledBack) << result->message;
  EXPECT_NE(result->details.value("audit_tag_error", "").find("does not exist"), std::string::npos)
      << result->details.dump();
  EXPECT_EQ(EnvironmentState(flag_), "off");
}

TEST_F(UnleashProviderTest, ResumeReadsStateWithoutResending) {
  CreateFlag(flag_);
  auto provider = MakeProvider(Settings());
  ASSERT_NE(provider, nullptr);
  auto plan = provider->MakePlan("off");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  ResumeRequest request{.plan = *plan, .idempotency_key = "job-1", .started = std::nullopt};

  auto unchanged = provider->Resume(request, Context());
  ASSERT_TRUE(unchanged.has_value()) << unchanged.error().message;
  EXPECT_EQ(unchanged->outcome, RollbackOutcome::kFailed) << unchanged->message;
  EXPECT_EQ(EnvironmentState(flag_), "on");

  ASSERT_EQ(Admin(http::Method::kPost, FeaturePath(flag_) + "/environments/production/off").status,
            200);
  auto landed = provider->Resume(request, Context());
  ASSERT_TRUE(landed.has_value()) << landed.error().message;
  EXPECT_EQ(landed->outcome, RollbackOutcome::kRolledBack) << landed->message;
  EXPECT_EQ(landed->live_version, "off");
}

TEST_F(UnleashProviderTest, OffFlagPlansNoop) {
  CreateFlag(flag_);
  ASSERT_EQ(Admin(http::Method::kPost, FeaturePath(flag_) + "/environments/production/off").status,
            200);
  auto provider = MakeProvider(Settings());
  ASSERT_NE(provider, nullptr);

  auto plan = provider->MakePlan("off");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_TRUE(plan->noop);
  auto result = provider->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kSkippedNoop);
}

TEST_F(UnleashProviderTest, TurnsFlagOn) {
  CreateFlag(flag_);
  ASSERT_EQ(Admin(http::Method::kPost, FeaturePath(flag_) + "/environments/production/off").status,
            200);
  auto provider = MakeProvider(Settings({{"rollback", "on"}}));
  ASSERT_NE(provider, nullptr);

  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_EQ(plan->action["type"], "turn_on");
  auto result = provider->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kRolledBack) << result->message;
  EXPECT_EQ(EnvironmentState(flag_), "on");

  auto record = provider->ReadBack(*result);
  ASSERT_TRUE(record.has_value()) << record.error().message;
  EXPECT_EQ(record->details["event"]["type"], "feature-environment-enabled");
}

TEST_F(UnleashProviderTest, RolloutZeroNeedsBindingRequest) {
  CreateFlag(flag_);
  auto provider = MakeProvider(Settings());
  ASSERT_NE(provider, nullptr);

  auto plan = provider->MakePlan("rollout-0");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(plan.error().message.find("rollback: rollout-0"), std::string::npos)
      << plan.error().message;
}

TEST_F(UnleashProviderTest, RolloutZeroLowersEveryRollout) {
  CreateFlag(flag_, "60");
  auto provider = MakeProvider(Settings({{"rollback", "rollout-0"}}));
  ASSERT_NE(provider, nullptr);

  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_EQ(plan->action["type"], "rollout_zero");
  ASSERT_EQ(plan->action["strategies"].size(), 1u);
  EXPECT_EQ(plan->action["strategies"][0]["from"], "60");

  auto result = provider->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kRolledBack) << result->message;
  EXPECT_EQ(result->live_version, "rollout-0");
  Reply feature = Admin(http::Method::kGet, FeaturePath(flag_));
  json strategies = feature.body["environments"][1]["strategies"];
  ASSERT_EQ(strategies.size(), 1u) << feature.body.dump();
  EXPECT_EQ(strategies[0]["parameters"]["rollout"], "0");
  EXPECT_EQ(EnvironmentState(flag_), "on");

  auto record = provider->ReadBack(*result);
  ASSERT_TRUE(record.has_value()) << record.error().message;
  EXPECT_EQ(record->details["event"]["type"], "feature-strategy-update");
}

TEST_F(UnleashProviderTest, RolloutZeroPartialWhileAddressStrategyServes) {
  CreateFlag(flag_);
  Reply users =
      Admin(http::Method::kPost, FeaturePath(flag_) + "/environments/production/strategies",
            json{{"name", "remoteAddress"}, {"parameters", {{"IPs", "10.0.0.1"}}}});
  ASSERT_EQ(users.status, 200) << users.body.dump();
  auto provider = MakeProvider(Settings({{"rollback", "rollout-0"}}));
  ASSERT_NE(provider, nullptr);

  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_EQ(plan->action["still_serving"].size(), 1u);
  EXPECT_NE(plan->summary.find("partial"), std::string::npos) << plan->summary;

  auto result = provider->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kPartial) << result->message;
  EXPECT_NE(result->message.find("remoteAddress"), std::string::npos) << result->message;
}

TEST_F(UnleashProviderTest, RolloutChangedSincePlanIsRefused) {
  CreateFlag(flag_, "60");
  auto provider = MakeProvider(Settings({{"rollback", "rollout-0"}}));
  ASSERT_NE(provider, nullptr);
  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;

  std::string id = plan->action["strategies"][0]["id"];
  Reply moved =
      Admin(http::Method::kPatch, FeaturePath(flag_) + "/environments/production/strategies/" + id,
            json::array({{{"op", "replace"}, {"path", "/parameters/rollout"}, {"value", "80"}}}));
  ASSERT_EQ(moved.status, 200) << moved.body.dump();

  auto result = provider->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kPreconditionFailed) << result->message;
}

TEST_F(UnleashProviderTest, ArchivedFlagFailsWithCause) {
  CreateFlag(flag_);
  ASSERT_EQ(Admin(http::Method::kDelete, FeaturePath(flag_)).status, 202);
  auto provider = MakeProvider(Settings());
  ASSERT_NE(provider, nullptr);

  auto plan = provider->MakePlan("off");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, core::ErrorCode::kFailedPrecondition);
  EXPECT_NE(plan.error().message.find("is archived"), std::string::npos) << plan.error().message;
}

TEST_F(UnleashProviderTest, FlagArchivedAfterPlanFails) {
  CreateFlag(flag_);
  auto provider = MakeProvider(Settings({{"audit_tag", false}}));
  ASSERT_NE(provider, nullptr);
  auto plan = provider->MakePlan("off");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  ASSERT_EQ(Admin(http::Method::kDelete, FeaturePath(flag_)).status, 202);

  auto result = provider->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kFailed);
  EXPECT_NE(result->message.find("archived"), std::string::npos) << result->message;
}

TEST_F(UnleashProviderTest, UnknownEnvironmentFails) {
  CreateFlag(flag_);
  auto provider = MakeProvider(Settings({{"environment", "staging"}}));
  ASSERT_NE(provider, nullptr);

  auto plan = provider->MakePlan("off");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, core::ErrorCode::kFailedPrecondition);
  EXPECT_NE(plan.error().message.find("no environment 'staging'"), std::string::npos)
      << plan.error().message;
}

TEST_F(UnleashProviderTest, UnknownProjectFails) {
  CreateFlag(flag_);
  auto provider = MakeProvider(Settings({{"project", "payments"}}));
  ASSERT_NE(provider, nullptr);

  auto plan = provider->MakePlan("off");
  ASSERT_FALSE(plan.has_value());
  EXPECT_NE(plan.error().message.find("no project 'payments'"), std::string::npos)
      << plan.error().message;
}

TEST_F(UnleashProviderTest, ChangeRequestEndsPendingApproval) {
  CreateFlag(flag_);

  // An Editor's personal access token, because admin tokens may skip change requests.
  std::string email = flag_ + "@example.com";
  std::string password = "Backout-Test-Password-7q!";
  Reply user = Admin(
      http::Method::kPost, "/api/admin/user-admin",
      json{{"email", email}, {"password", password}, {"rootRole", "Editor"}, {"sendEmail", false}});
  ASSERT_EQ(user.status, 201) << user.body.dump();
  http::Request login;
  login.method = http::Method::kPost;
  login.url = server_->url() + "/auth/simple/login";
  login.headers.Add("Content-Type", "application/json");
  login.body = json{{"username", email}, {"password", password}}.dump();
  auto logged_in = http_->Send(login);
  ASSERT_TRUE(logged_in.has_value());
  ASSERT_EQ(logged_in->status, 200) << logged_in->body;
  std::string cookies;
  for (const std::string& cookie : logged_in->headers.GetAll("Set-Cookie")) {
    cookies += cookie.substr(0, cookie.find(';')) + "; ";
  }
  http::Request create_token;
  create_token.method = http::Method::kPost;
  create_token.url = server_->url() + "/api/admin/user/tokens";
  create_token.headers.Add("Content-Type", "application/json");
  create_token.headers.Add("Cookie", cookies);
  create_token.body =
      json{{"description", "backout"}, {"expiresAt", "2099-01-01T00:00:00Z"}}.dump();
  auto token = http_->Send(create_token);
  ASSERT_TRUE(token.has_value());
  ASSERT_EQ(token->status, 201) << token->body;
  std::string personal_token = json::parse(token->body).value("secret", "");

  // Unleash's open-source build keeps the setting in this table; Enterprise sets it in the UI.
  auto protected_environment = server_->ExecuteSql(
      "INSERT INTO change_request_settings (project, environment) VALUES ('default', "
      "'production') ON CONFLICT DO NOTHING");
  ASSERT_TRUE(protected_environment.has_value()) << protected_environment.error();
  auto provider = MakeProvider(Settings(), personal_token);
  ASSERT_NE(provider, nullptr);
  auto plan = provider->MakePlan("off");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  auto result = provider->Execute(*plan, "job-1", Context());
  auto unprotected = server_->ExecuteSql("DELETE FROM change_request_settings");
  ASSERT_TRUE(unprotected.has_value()) << unprotected.error();

  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, RollbackOutcome::kPendingApproval) << result->message;
  EXPECT_NE(result->message.find("SKIP_CHANGE_REQUEST"), std::string::npos) << result->message;
  EXPECT_EQ(EnvironmentState(flag_), "on");
}

TEST_F(UnleashProviderTest, HistoryFindsHandMadeToggle) {
  core::Time since = clock_.Now() - std::chrono::minutes(1);
  CreateFlag(flag_);
  ASSERT_EQ(Admin(http::Method::kPost, FeaturePath(flag_) + "/environments/production/off").status,
            200);
  auto provider = MakeProvider(Settings());
  ASSERT_NE(provider, nullptr);

  auto history = provider->History(since);
  ASSERT_TRUE(history.has_value()) << history.error().message;
  ASSERT_FALSE(history->empty());
  const HistoryEntry& last = history->back();
  EXPECT_EQ(last.version, "off");
  EXPECT_EQ(last.kind, HistoryKind::kRollback);
  EXPECT_EQ(last.actor, "admin");
  EXPECT_EQ(last.details["by_backout"], false);
  EXPECT_EQ(last.details["type"], "feature-environment-disabled");
}

TEST_F(UnleashProviderTest, PreconditionsNameDependentFlags) {
  CreateFlag(flag_);
  std::string child = flag_ + ".child";
  ASSERT_EQ(Admin(http::Method::kPost, "/api/admin/projects/default/features",
                  json{{"name", child}, {"type", "release"}})
                .status,
            201);
  Reply dependency = Admin(http::Method::kPost, FeaturePath(child) + "/dependencies",
                           json{{"feature", flag_}, {"enabled", false}});
  ASSERT_EQ(dependency.status, 200) << dependency.body.dump();
  auto provider = MakeProvider(Settings());
  ASSERT_NE(provider, nullptr);

  auto checks = provider->Preconditions();
  ASSERT_TRUE(checks.has_value()) << checks.error().message;
  std::string serves;
  for (const Precondition& check : *checks) {
    EXPECT_TRUE(check.satisfied) << check.name << ": " << check.detail;
    if (check.name == "what off serves") serves = check.detail;
  }
  EXPECT_NE(serves.find("'disabled' variant"), std::string::npos) << serves;
  EXPECT_NE(serves.find(child + " can turn ON"), std::string::npos) << serves;
  auto plan = provider->MakePlan("off");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_EQ(plan->action["dependent_flags"], json::array({child}));
}

TEST_F(UnleashProviderTest, SdkEvaluationConfirmsOff) {
  CreateFlag(flag_);
  auto provider = MakeProvider(Settings({{"sdk_evaluation", SdkCommand()}}));
  ASSERT_NE(provider, nullptr);
  auto before = provider->CheckReadiness();
  ASSERT_TRUE(before.has_value()) << before.error().message;
  EXPECT_FALSE(before->ready);

  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  auto result = provider->Execute(*plan, "job-1", Context());
  ASSERT_TRUE(result.has_value()) << result.error().message;
  ASSERT_EQ(result->outcome, RollbackOutcome::kRolledBack) << result->message;

  // Unleash may serve the old state to SDKs for a moment, as clients in the field do.
  core::Result<Readiness> ready = before;
  for (int attempt = 0; attempt < 10; ++attempt) {
    ready = provider->CheckReadiness();
    if (ready && ready->ready) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_TRUE(ready.has_value()) << ready.error().message;
  EXPECT_TRUE(ready->ready) << ready->message;
  EXPECT_NE(ready->message.find("enabled=false, variant disabled"), std::string::npos)
      << ready->message;

  auto record = provider->ReadBack(*result);
  ASSERT_TRUE(record.has_value()) << record.error().message;
  EXPECT_EQ(record->details["sdk_evaluation"]["enabled"], false) << record->details.dump();
  EXPECT_TRUE(record->details["sdk_evaluation"]["evaluated_at"].is_string());
  EXPECT_TRUE(record->details["accepted_at"].is_string());
}

}  // namespace
}  // namespace backout::providers::unleash
