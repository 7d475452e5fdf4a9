// Webhook notifications delivered to a local receiver that verifies every signature.
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "app/control_plane.h"
#include "app/job_runner.h"
#include "ledger/entry.h"
#include "providers/registry.h"
#include "support/temp_dir.h"
#include "support/webhook_receiver.h"

namespace backout::app {
namespace {

using nlohmann::json;

constexpr char kSecret[] = "canary-webhook-secret-5f1c2a";
constexpr char kSecretVariable[] = "BACKOUT_TEST_WEBHOOK_SECRET";

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A control plane over SQLite with one runbook service and the `notifications` block given to
// Build().
class NotificationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv(kSecretVariable, kSecret, 1);
    receiver_.SetNow([this] {
      return std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch())
          .count();
    });
    receiver_.ReservePort();
  }

  void TearDown() override { ::unsetenv(kSecretVariable); }

  void Build(const std::string& notifications_yaml) {
    const auto& dir = temp_.path();
    std::ofstream(dir / "rollback.sh") << "#!/bin/sh\nexit 0\n";
    ::chmod((dir / "rollback.sh").c_str(), 0755);
    const std::string text = fmt::format(R"(listen: 127.0.0.1:0
data_dir: {0}/data
users:
  - {{name: lead-1, roles: [engineering-lead]}}
services:
  - name: checkout
    provider: {{kind: command, run: [{0}/rollback.sh], output_dir: {0}}}
notifications:
{1})",
                                         dir.string(), notifications_yaml);
    auto config = Config::Parse(text, "test.yaml", dir);
    ASSERT_TRUE(config.has_value()) << config.error().message;
    ProviderMap providers;
    for (const ServiceConfig& service : config->services) {
      auto provider = providers::Registry::Create(service.provider.kind, service.name,
                                                  service.provider.settings, {}, clock_);
      ASSERT_TRUE(provider.has_value()) << provider.error().message;
      providers.emplace(service.name,
                        std::shared_ptr<const providers::Provider>(*std::move(provider)));
    }
    auto settings = Settings::Create(*std::move(config), std::move(providers));
    ASSERT_TRUE(settings.has_value()) << settings.error().message;
    auto signer = ledger::Signer::Generate();
    auto store = store::OpenStore(fmt::format("sqlite:{}/backout.db", dir.string()),
                                  store::StoreOptions{.clock = &clock_, .signer = *signer});
    ASSERT_TRUE(store.has_value()) << store.error().message;
    store_ = *std::move(store);
    plane_ = std::make_unique<ControlPlane>(*store_, clock_, *settings);
    ASSERT_TRUE(plane_->BootstrapAdmin().has_value());
    std::string token = ReadFile(dir / "data" / "admin.token");
    while (!token.empty() && token.back() == '\n') token.pop_back();
    auto admin = plane_->Authenticate(token);
    ASSERT_TRUE(admin.has_value());
    auto created = plane_->CreateUser(
        *admin, NewUser{.name = "lead-1", .roles = {core::Role::kEngineeringLead}});
    ASSERT_TRUE(created.has_value()) << created.error().message;
    lead_ = *plane_->Authenticate(created->token);
    runner_ = std::make_unique<JobRunner>(*plane_, JobRunnerOptions{.owner = "test-worker"});
  }

  std::string Webhook(const std::string& extra = "") const {
    return fmt::format(
        "  retry_initial: 10s\n  retry_max: 40s\n  max_attempts: 4\n  webhooks:\n"
        "    - {{name: ops, url: '{}', secret: 'env:{}'{}}}\n",
        receiver_.Url(), kSecretVariable, extra);
  }

  std::string OpenIncident() {
    auto incident =
        plane_->OpenIncident(lead_, NewIncident{.service = "checkout", .title = "checkout errors"});
    EXPECT_TRUE(incident.has_value()) << incident.error().message;
    return incident ? incident->id : "";
  }

  void RunJobs() {
    while (true) {
      auto ran = runner_->RunOnce({});
      ASSERT_TRUE(ran.has_value()) << ran.error().message;
      if (!*ran) return;
    }
  }

  std::vector<Notification> Notifications(bool failed_only = false) {
    auto page = plane_->ListNotifications(lead_, failed_only, ListOptions{});
    EXPECT_TRUE(page.has_value()) << page.error().message;
    return page ? page->items : std::vector<Notification>{};
  }

  testing::TempDir temp_;
  core::ManualClock clock_{*core::ParseTime("2026-12-04T12:00:00Z")};
  testing::WebhookReceiver receiver_{kSecret};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<ControlPlane> plane_;
  std::unique_ptr<JobRunner> runner_;
  Caller lead_;
};

TEST_F(NotificationTest, ReceiverVerifiesEverySignature) {
  Build(Webhook());
  ASSERT_TRUE(receiver_.Start());
  const std::string incident = OpenIncident();
  ASSERT_TRUE(plane_->Assess(lead_, incident, {}).has_value());
  RunJobs();

  const auto received = receiver_.Deliveries();
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].event, "incident.opened");
  EXPECT_EQ(received[1].event, "decision.needed");
  for (const auto& delivery : received) {
    EXPECT_TRUE(delivery.signature_valid) << delivery.body;
    EXPECT_TRUE(delivery.fresh) << delivery.timestamp;
    const json body = json::parse(delivery.body);
    EXPECT_EQ(body["delivery"], delivery.idempotency_key);
    EXPECT_EQ(body["subject"], "incident/" + incident);
  }
  EXPECT_NE(received[0].idempotency_key, received[1].idempotency_key);
  for (const Notification& notification : Notifications()) {
    EXPECT_EQ(notification.state, "delivered") << notification.id;
    EXPECT_EQ(notification.attempts, 1) << notification.id;
  }
}

TEST_F(NotificationTest, RetriesWhileReceiverDownThenArrives) {
  Build(Webhook());
  OpenIncident();
  RunJobs();  // attempt 1: connection refused
  clock_.Advance(std::chrono::seconds(10));
  RunJobs();  // attempt 2: connection refused
  auto pending = Notifications();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].state, "pending");
  EXPECT_EQ(pending[0].attempts, 2);
  EXPECT_FALSE(pending[0].last_error.empty());
  EXPECT_TRUE(receiver_.Deliveries().empty());

  ASSERT_TRUE(receiver_.Start());
  clock_.Advance(std::chrono::seconds(19));
  RunJobs();  // the third attempt is due 20 s after the second
  EXPECT_TRUE(receiver_.Deliveries().empty());
  clock_.Advance(std::chrono::seconds(1));
  RunJobs();

  const auto received = receiver_.Deliveries();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_TRUE(received[0].signature_valid);
  EXPECT_EQ(received[0].idempotency_key, pending[0].id);
  EXPECT_EQ(received[0].body, pending[0].body);
  EXPECT_EQ(Notifications()[0].state, "delivered");
  EXPECT_EQ(Notifications()[0].attempts, 3);
}

TEST_F(NotificationTest, DeadLetteredAfterLastAttempt) {
  Build(Webhook());
  ASSERT_TRUE(receiver_.Start());
  receiver_.SetStatus(500);
  OpenIncident();
  for (int attempt = 0; attempt < 6; ++attempt) {
    RunJobs();
    clock_.Advance(std::chrono::seconds(40));
  }

  EXPECT_EQ(receiver_.Deliveries().size(), 4u);
  const auto failed = Notifications(/*failed_only=*/true);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].attempts, 4);
  EXPECT_EQ(failed[0].last_status, 500);

  auto count = store_->EntryCount();
  auto entries = store_->ReadEntries(0, *count);
  int dead_lettered = 0;
  for (const auto& entry : *entries) {
    auto decoded = ledger::DecodeEntry(entry.encoded);
    if (decoded && decoded->action == "notification.dead_lettered") ++dead_lettered;
  }
  EXPECT_EQ(dead_lettered, 1);
}

TEST_F(NotificationTest, FilterAndSlackText) {
  Build(Webhook(", events: [incident.opened], slack: true"));
  ASSERT_TRUE(receiver_.Start());
  const std::string incident = OpenIncident();
  ASSERT_TRUE(plane_->Assess(lead_, incident, {}).has_value());
  RunJobs();

  const auto received = receiver_.Deliveries();
  ASSERT_EQ(received.size(), 1u);
  const json body = json::parse(received[0].body);
  ASSERT_TRUE(body.contains("text"));
  EXPECT_EQ(body.size(), 1u);
  EXPECT_NE(body["text"].get<std::string>().find(incident), std::string::npos);
}

TEST_F(NotificationTest, SecretAndUrlNeverLogged) {
  const std::string url_token = "T0KEN-in-path-9d3e";
  Build(
      fmt::format("  webhooks:\n    - {{name: chat, url: 'http://127.0.0.1:{}/hook/{}', "
                  "secret: 'env:{}'}}\n",
                  receiver_.port(), url_token, kSecretVariable));
  std::ostringstream captured;
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured));
  spdlog::set_default_logger(logger);

  OpenIncident();
  RunJobs();  // refused: the receiver is not listening
  spdlog::set_default_logger(previous);

  const std::string logs = captured.str();
  EXPECT_NE(logs.find("retry_later"), std::string::npos) << logs;
  EXPECT_EQ(logs.find(kSecret), std::string::npos) << logs;
  EXPECT_EQ(logs.find(url_token), std::string::npos) << logs;
  const auto stored = Notifications();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].last_error.find(url_token), std::string::npos) << stored[0].last_error;
  EXPECT_EQ(ToJson(stored[0]).dump().find(kSecret), std::string::npos);
}

TEST_F(NotificationTest, NoWebhookNoNotification) {
  Build("  webhooks: []\n");
  OpenIncident();
  EXPECT_TRUE(Notifications().empty());
}

// ---- Configuration ---------------------------------------------------------------------------

core::Result<Config> ParseWith(const std::string& tail) {
  return Config::Parse(
      "services:\n  - name: checkout\n    provider: {kind: command, run: [/bin/true]}\n" + tail,
      "test.yaml", "/tmp");
}

TEST(NotificationConfigTest, ReadsWebhooks) {
  auto config = ParseWith(
      "notifications:\n  max_attempts: 3\n  webhooks:\n"
      "    - {name: ops, url: 'https://hooks.example.com/x', secret: 'env:S', events: "
      "[incident.opened], slack: true}\n");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  ASSERT_EQ(config->notifications.webhooks.size(), 1u);
  const WebhookConfig& webhook = config->notifications.webhooks[0];
  EXPECT_EQ(webhook.name, "ops");
  EXPECT_EQ(webhook.secret.ToString(), "env:S");
  EXPECT_EQ(webhook.events, std::vector<std::string>{"incident.opened"});
  EXPECT_TRUE(webhook.slack);
  EXPECT_EQ(config->notifications.max_attempts, 3);
}

TEST(NotificationConfigTest, RejectsUnknownEvent) {
  auto config = ParseWith(
      "notifications:\n  webhooks:\n"
      "    - {name: ops, url: 'https://h.example.com/', secret: 'env:S', events: [opened]}\n");
  ASSERT_FALSE(config.has_value());
  EXPECT_NE(config.error().message.find("unknown event 'opened'"), std::string::npos)
      << config.error().message;
}

TEST(NotificationConfigTest, RejectsInlineSecret) {
  auto config = ParseWith(
      "notifications:\n  webhooks:\n"
      "    - {name: ops, url: 'https://h.example.com/', secret: 'hunter2-inline'}\n");
  ASSERT_FALSE(config.has_value());
  EXPECT_EQ(config.error().message.find("hunter2-inline"), std::string::npos)
      << config.error().message;
}

TEST(NotificationConfigTest, RejectsDuplicateName) {
  auto config = ParseWith(
      "notifications:\n  webhooks:\n"
      "    - {name: ops, url: 'https://a.example.com/', secret: 'env:S'}\n"
      "    - {name: ops, url: 'https://b.example.com/', secret: 'env:S'}\n");
  ASSERT_FALSE(config.has_value());
  EXPECT_NE(config.error().message.find("already defined"), std::string::npos)
      << config.error().message;
}

TEST(NotificationConfigTest, RejectsNonHttpUrlWithoutQuotingIt) {
  auto config = ParseWith(
      "notifications:\n  webhooks:\n"
      "    - {name: ops, url: 'ftp://token-abc@x/', secret: 'env:S'}\n");
  ASSERT_FALSE(config.has_value());
  EXPECT_EQ(config.error().message.find("token-abc"), std::string::npos) << config.error().message;
}

TEST(NotificationConfigTest, ReconcileIntervalDefaultAndOverride) {
  auto defaulted = ParseWith("");
  ASSERT_TRUE(defaulted.has_value()) << defaulted.error().message;
  EXPECT_EQ(defaulted->services[0].reconcile_interval, kDefaultReconcileInterval);

  auto set = Config::Parse(
      "services:\n  - name: checkout\n    reconcile_interval: 30s\n"
      "    provider: {kind: command, run: [/bin/true]}\n",
      "test.yaml", "/tmp");
  ASSERT_TRUE(set.has_value()) << set.error().message;
  EXPECT_EQ(set->services[0].reconcile_interval, std::chrono::seconds(30));
}

TEST(NotificationConfigTest, RetryDelayDoublesUpToMax) {
  NotificationsConfig config{.retry_initial = std::chrono::seconds(10),
                             .retry_max = std::chrono::seconds(35)};
  EXPECT_EQ(NotificationRetryDelay(config, 1), std::chrono::seconds(10));
  EXPECT_EQ(NotificationRetryDelay(config, 2), std::chrono::seconds(20));
  EXPECT_EQ(NotificationRetryDelay(config, 3), std::chrono::seconds(35));
  EXPECT_EQ(NotificationRetryDelay(config, 30), std::chrono::seconds(35));
}

}  // namespace
}  // namespace backout::app
