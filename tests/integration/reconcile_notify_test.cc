// Reconciliation and webhook notifications through the real `backout serve`: a runbook whose
// history shows a hand-made rollback, and a server killed while it delivers a notification.
#include <signal.h>

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "harness.h"
#include "support/temp_dir.h"
#include "support/webhook_receiver.h"

namespace backout::integration {
namespace {

using std::chrono::seconds;

constexpr char kSecret[] = "canary-webhook-secret-81b0e4";

#define ASSERT_CLI_OK(result) \
  ASSERT_EQ((result).exit_code, 0) << "stdout:\n" << (result).out << "\nstderr:\n" << (result).err

template <typename Condition>
bool WaitFor(Condition done, seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

// One server with the runbook service `checkout`, whose `history` command prints history.jsonl,
// and one webhook pointed at `receiver` for the events in `events` (a YAML flow list).
class Server {
 public:
  Server(const testing::WebhookReceiver& receiver, const std::string& events)
      : port_(FreeLoopbackPort()) {
    const std::string dir = folder_.path().string();
    WriteFile(folder_.path() / "rollback.sh", "#!/bin/sh\nexit 0\n",
              std::filesystem::perms::owner_all);
    WriteFile(folder_.path() / "history.sh",
              fmt::format("#!/bin/sh\ncat '{}/history.jsonl'\n", dir),
              std::filesystem::perms::owner_all);
    WriteFile(folder_.path() / "history.jsonl",
              R"({"version": "v1", "time": "2026-12-01T10:00:00Z", "actor": "ci"}
{"version": "v2", "time": "2026-12-02T10:00:00Z", "actor": "ci"}
{"version": "v1", "time": "2026-12-03T09:30:00Z", "actor": "alice"}
)");
    WriteFile(folder_.path() / "backout.yaml",
              fmt::format("listen: 127.0.0.1:{port}\n"
                          "data_dir: {dir}/data\n"
                          "users:\n"
                          "  - {{name: lead-1, roles: [engineering-lead]}}\n"
                          "services:\n"
                          "  - name: checkout\n"
                          "    reconcile_interval: 1s\n"
                          "    provider:\n"
                          "      kind: command\n"
                          "      run: ['{dir}/rollback.sh']\n"
                          "      history: ['{dir}/history.sh']\n"
                          "notifications:\n"
                          "  retry_initial: 1s\n"
                          "  retry_max: 2s\n"
                          "  webhooks:\n"
                          "    - name: ops\n"
                          "      url: '{url}'\n"
                          "      secret: env:BACKOUT_TEST_WEBHOOK_SECRET\n"
                          "      events: {events}\n",
                          fmt::arg("port", port_), fmt::arg("dir", dir),
                          fmt::arg("url", receiver.Url()), fmt::arg("events", events)));
    process_ = std::make_unique<ServerProcess>(
        folder_.path() / "backout.yaml", log(),
        std::map<std::string, std::string>{{"BACKOUT_TEST_WEBHOOK_SECRET", kSecret}});
  }

  bool Start() { return process_->Start(port_); }
  void Kill() { process_->Stop(SIGKILL); }
  std::filesystem::path log() const { return folder_.path() / "server.log"; }

  CliResult Cli(const std::string& token, std::vector<std::string> args) {
    args.insert(args.end(), {"-o", "json"});
    return RunCli(
        args,
        {{"BACKOUT_URL", fmt::format("http://127.0.0.1:{}", port_)}, {"BACKOUT_TOKEN", token}},
        folder_.path());
  }

  std::string AdminToken() const {
    std::string token = ReadFile(folder_.path() / "data" / "admin.token");
    while (!token.empty() && token.back() == '\n') token.pop_back();
    return token;
  }

  // Creates lead-1 and returns its token.
  std::string GrantLead() {
    const CliResult created =
        Cli(AdminToken(), {"user", "create", "lead-1", "--role", "engineering-lead"});
    EXPECT_EQ(created.exit_code, 0) << created.err;
    return created.Json().is_object() ? created.Json().value("token", std::string()) : "";
  }

 private:
  testing::TempDir folder_;
  int port_;
  std::unique_ptr<ServerProcess> process_;
};

TEST(ReconcileNotifyTest, HandMadeRollbackDiscoveredOnce) {
  testing::WebhookReceiver receiver(kSecret);
  ASSERT_TRUE(receiver.Start());
  Server server(receiver, "[incident.opened, rollback.discovered]");
  ASSERT_TRUE(server.Start()) << ReadFile(server.log());
  const std::string lead = server.GrantLead();
  ASSERT_FALSE(lead.empty());
  for (const auto& [version, time] : std::vector<std::pair<std::string, std::string>>{
           {"v1", "2026-12-01T10:01:00Z"}, {"v2", "2026-12-02T10:01:00Z"}}) {
    ASSERT_CLI_OK(server.Cli(lead, {"change", "record", "--service", "checkout", "--version",
                                    version, "--deployer", "ci", "--time", time}));
  }

  // Manual runs on top of the scheduled job, which runs every second.
  for (int run = 0; run < 3; ++run) {
    ASSERT_CLI_OK(server.Cli(lead, {"service", "reconcile", "checkout"}));
  }
  std::this_thread::sleep_for(seconds(3));

  const CliResult listed = server.Cli(lead, {"discovered", "list"});
  ASSERT_CLI_OK(listed);
  const nlohmann::json items = listed.Json();
  ASSERT_TRUE(items.is_array()) << listed.out;
  ASSERT_EQ(items.size(), 1u) << listed.out;
  EXPECT_EQ(items[0].value("actor", ""), "alice");
  EXPECT_EQ(items[0].value("time", ""), "2026-12-03T09:30:00.000000Z");
  EXPECT_EQ(items[0].value("version", ""), "v1");

  const CliResult shown = server.Cli(lead, {"service", "show", "checkout"});
  ASSERT_CLI_OK(shown);
  EXPECT_EQ(shown.Json().value("reconcilable", false), true) << shown.out;

  // The discovered rollback's notification arrives once, signed.
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const auto& delivery : receiver.Deliveries()) {
          if (delivery.event == "rollback.discovered") return true;
        }
        return false;
      },
      seconds(30)))
      << ReadFile(server.log());
  int discovered = 0;
  for (const auto& delivery : receiver.Deliveries()) {
    EXPECT_TRUE(delivery.signature_valid) << delivery.body;
    discovered += delivery.event == "rollback.discovered" ? 1 : 0;
  }
  EXPECT_EQ(discovered, 1);
}

TEST(ReconcileNotifyTest, KilledMidDeliveryKeepsIdempotencyKey) {
  testing::WebhookReceiver receiver(kSecret);
  ASSERT_TRUE(receiver.Start());
  receiver.DelayNext(1, std::chrono::milliseconds(5000));
  Server server(receiver, "[incident.opened]");
  ASSERT_TRUE(server.Start()) << ReadFile(server.log());
  const std::string lead = server.GrantLead();
  ASSERT_FALSE(lead.empty());

  ASSERT_CLI_OK(server.Cli(lead, {"incident", "open", "--service", "checkout", "--severity", "sev2",
                                  "--title", "first"}));
  ASSERT_TRUE(WaitFor([&] { return receiver.Arrived() >= 1; }, seconds(30)))
      << ReadFile(server.log());
  server.Kill();  // the receiver is still delaying its response to the first delivery

  ASSERT_TRUE(server.Start()) << ReadFile(server.log());
  ASSERT_CLI_OK(server.Cli(lead, {"incident", "open", "--service", "checkout", "--severity", "sev2",
                                  "--title", "second"}));

  // The first delivery's lease expires after the kill and another attempt sends it again.
  std::map<std::string, std::vector<testing::ReceivedDelivery>> by_key;
  ASSERT_TRUE(WaitFor(
      [&] {
        by_key.clear();
        for (const auto& delivery : receiver.Deliveries()) {
          by_key[delivery.idempotency_key].push_back(delivery);
        }
        int opened = 0;
        for (const auto& [key, deliveries] : by_key) {
          opened += deliveries.front().event == "incident.opened" ? 1 : 0;
        }
        return opened == 2 && by_key.begin()->second.size() >= 2;
      },
      seconds(90)))
      << ReadFile(server.log());

  std::set<std::string> incidents;
  for (const auto& [key, deliveries] : by_key) {
    for (const auto& delivery : deliveries) {
      EXPECT_TRUE(delivery.signature_valid) << key;
      EXPECT_EQ(delivery.body, deliveries.front().body) << key;
    }
    if (deliveries.front().event == "incident.opened") {
      incidents.insert(nlohmann::json::parse(deliveries.front().body)["data"]["incident"]);
    }
  }
  // Each incident's event came under one key only.
  EXPECT_EQ(incidents.size(), 2u);

  const CliResult listed = server.Cli(lead, {"notification", "list"});
  ASSERT_CLI_OK(listed);
  for (const auto& item : listed.Json()) {
    if (item.value("event", "") == "incident.opened") {
      EXPECT_EQ(item.value("state", ""), "delivered") << item.dump();
    }
  }
  const CliResult failed = server.Cli(lead, {"notification", "list", "--failed"});
  ASSERT_CLI_OK(failed);
  EXPECT_TRUE(failed.Json().empty()) << failed.out;
  EXPECT_EQ(ReadFile(server.log()).find(kSecret), std::string::npos);
}

}  // namespace
}  // namespace backout::integration
