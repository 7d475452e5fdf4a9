#include "app/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>
#include <string>

#include "support/temp_dir.h"

namespace backout::app {
namespace {

using nlohmann::json;

constexpr std::string_view kFileName = "backout.yaml";
constexpr std::string_view kBaseDir = "/etc/backout";

// The minimal configuration exactly as the control plane's documentation gives it.
constexpr std::string_view kMinimalConfig = R"(listen: 127.0.0.1:8470
database: sqlite:/var/lib/backout/backout.db
data_dir: /var/lib/backout
users:
  - {name: lead-1, roles: [engineering-lead]}
  - {name: sre-1, roles: [devops-engineer], services: [checkout]}
services:
  - name: checkout
    environment: production
    depends_on: [payments]
    provider:
      kind: command
      run: [/opt/runbooks/rollback-checkout, --fast]
      status: [/opt/runbooks/checkout-version]
      timeout: 300s
  - name: payments
    provider: {kind: command, run: [/opt/runbooks/rollback-payments]}
)";

// Every key the loader accepts, each set to a value other than its default.
constexpr std::string_view kFullConfig = R"(listen: "[::1]:9000"
database: postgresql://backout@db.internal/backout
data_dir: /srv/backout
tls: {certificate: file:/path/cert.pem, private_key: file:/path/key.pem}
metrics: {token: env:BACKOUT_METRICS_TOKEN}
policy:
  separation_of_duties: false
  decider_roles: [engineering-lead, admin]
  executor_roles: [devops-engineer]
  break_glass_approval_window: 720m
  closure:
    root_cause: true
    recovered_or_no_go: false
    review: true
    action_items: false
    retroactive_approval: false
users:
  - {name: lead-1, roles: [engineering-lead]}
  - {name: sre-1, roles: [devops-engineer], services: [checkout]}
services:
  - name: checkout
    environment: staging
    owner: team-payments
    tier: 1
    customer_facing: true
    depends_on: [payments]
    provider:
      kind: command
      run: [/opt/runbooks/rollback-checkout, --fast]
      status: [/opt/runbooks/checkout-version]
      history: [/opt/runbooks/checkout-history]
      readiness: [/opt/runbooks/checkout-ready, --wait]
      timeout: 300s
      check_timeout: 20s
      kill_grace: 5s
      working_dir: /opt/runbooks
      output_dir: /var/lib/backout/output
      env: {API_TOKEN: env:CHECKOUT_TOKEN, SIGNING_KEY: file:keys/signing.pem}
    checks:
      - {name: smoke, kind: command, run: [/opt/checks/smoke], timeout: 30s}
  - name: payments
    provider: {kind: command, run: [/opt/runbooks/rollback-payments]}
)";

core::Result<Config> ParseConfig(std::string_view text) {
  return Config::Parse(text, kFileName, kBaseDir);
}

TEST(ConfigTest, MinimalConfigLoads) {
  auto config = ParseConfig(kMinimalConfig);
  ASSERT_TRUE(config.has_value()) << config.error().message;

  EXPECT_EQ(config->listen.host, "127.0.0.1");
  EXPECT_EQ(config->listen.port, 8470);
  EXPECT_EQ(config->database, "sqlite:/var/lib/backout/backout.db");
  EXPECT_EQ(config->data_dir, "/var/lib/backout");
  EXPECT_FALSE(config->tls.has_value());
  EXPECT_FALSE(config->metrics.token.has_value());

  ASSERT_EQ(config->users.size(), 2u);
  EXPECT_EQ(config->users[0].name, "lead-1");
  EXPECT_EQ(config->users[0].roles, std::vector<std::string>{"engineering-lead"});
  EXPECT_TRUE(config->users[0].services.empty());
  EXPECT_EQ(config->users[1].name, "sre-1");
  EXPECT_EQ(config->users[1].roles, std::vector<std::string>{"devops-engineer"});
  EXPECT_EQ(config->users[1].services, std::vector<std::string>{"checkout"});

  ASSERT_EQ(config->services.size(), 2u);
  const ServiceConfig& checkout = config->services[0];
  EXPECT_EQ(checkout.name, "checkout");
  EXPECT_EQ(checkout.environment, "production");
  EXPECT_EQ(checkout.depends_on, std::vector<std::string>{"payments"});
  EXPECT_EQ(checkout.provider.kind, "command");
  EXPECT_EQ(checkout.provider.settings,
            json::parse(R"({"run": ["/opt/runbooks/rollback-checkout", "--fast"],
                            "status": ["/opt/runbooks/checkout-version"],
                            "timeout": "300s"})"));
  EXPECT_TRUE(checkout.checks.empty());

  const ServiceConfig& payments = config->services[1];
  EXPECT_EQ(payments.name, "payments");
  EXPECT_EQ(payments.environment, "production");
  EXPECT_TRUE(payments.depends_on.empty());
  EXPECT_EQ(payments.provider.kind, "command");
  EXPECT_EQ(payments.provider.settings,
            json::parse(R"({"run": ["/opt/runbooks/rollback-payments"]})"));
}

TEST(ConfigTest, MinimalConfigGetsDefaultPolicy) {
  auto config = ParseConfig(kMinimalConfig);
  ASSERT_TRUE(config.has_value()) << config.error().message;

  const PolicyConfig& policy = config->policy;
  EXPECT_TRUE(policy.separation_of_duties);
  EXPECT_EQ(policy.decider_roles, std::vector<std::string>{"engineering-lead"});
  EXPECT_EQ(policy.executor_roles, std::vector<std::string>{"devops-engineer"});
  EXPECT_EQ(policy.break_glass_approval_window, std::chrono::hours(24));
  EXPECT_TRUE(policy.closure.root_cause);
  EXPECT_TRUE(policy.closure.recovered_or_no_go);
  EXPECT_TRUE(policy.closure.review);
  EXPECT_TRUE(policy.closure.action_items);
  EXPECT_TRUE(policy.closure.retroactive_approval);
}

TEST(ConfigTest, FullConfigLoads) {
  auto config = ParseConfig(kFullConfig);
  ASSERT_TRUE(config.has_value()) << config.error().message;

  EXPECT_EQ(config->listen.host, "::1");
  EXPECT_EQ(config->listen.port, 9000);
  EXPECT_EQ(config->listen.ToString(), "[::1]:9000");
  EXPECT_EQ(config->database, "postgresql://backout@db.internal/backout");
  EXPECT_EQ(config->data_dir, "/srv/backout");

  ASSERT_TRUE(config->tls.has_value());
  EXPECT_EQ(config->tls->certificate.ToString(), "file:/path/cert.pem");
  EXPECT_EQ(config->tls->private_key.ToString(), "file:/path/key.pem");
  ASSERT_TRUE(config->metrics.token.has_value());
  EXPECT_EQ(config->metrics.token->source(), SecretRef::Source::kEnv);
  EXPECT_EQ(config->metrics.token->target(), "BACKOUT_METRICS_TOKEN");

  const PolicyConfig& policy = config->policy;
  EXPECT_FALSE(policy.separation_of_duties);
  EXPECT_EQ(policy.decider_roles, (std::vector<std::string>{"engineering-lead", "admin"}));
  EXPECT_EQ(policy.executor_roles, std::vector<std::string>{"devops-engineer"});
  EXPECT_EQ(policy.break_glass_approval_window, std::chrono::hours(12));
  EXPECT_TRUE(policy.closure.root_cause);
  EXPECT_FALSE(policy.closure.recovered_or_no_go);
  EXPECT_TRUE(policy.closure.review);
  EXPECT_FALSE(policy.closure.action_items);
  EXPECT_FALSE(policy.closure.retroactive_approval);
}

TEST(ConfigTest, FullConfigServiceFields) {
  auto config = ParseConfig(kFullConfig);
  ASSERT_TRUE(config.has_value()) << config.error().message;

  const ServiceConfig* checkout = config->FindService("checkout");
  ASSERT_NE(checkout, nullptr);
  EXPECT_EQ(checkout->environment, "staging");
  EXPECT_EQ(checkout->owner, "team-payments");
  EXPECT_EQ(checkout->tier, 1);
  EXPECT_TRUE(checkout->customer_facing);
  EXPECT_EQ(checkout->provider.settings,
            json::parse(R"({"run": ["/opt/runbooks/rollback-checkout", "--fast"],
                            "status": ["/opt/runbooks/checkout-version"],
                            "history": ["/opt/runbooks/checkout-history"],
                            "readiness": ["/opt/runbooks/checkout-ready", "--wait"],
                            "timeout": "300s",
                            "check_timeout": "20s",
                            "kill_grace": "5s",
                            "working_dir": "/opt/runbooks",
                            "output_dir": "/var/lib/backout/output",
                            "env": {"API_TOKEN": "env:CHECKOUT_TOKEN",
                                    "SIGNING_KEY": "file:/etc/backout/keys/signing.pem"}})"));

  ASSERT_EQ(checkout->checks.size(), 1u);
  EXPECT_EQ(checkout->checks[0].name, "smoke");
  EXPECT_EQ(checkout->checks[0].kind, "command");
  EXPECT_EQ(checkout->checks[0].settings,
            json::parse(R"({"run": ["/opt/checks/smoke"], "timeout": "30s"})"));

  const ServiceConfig* payments = config->FindService("payments");
  ASSERT_NE(payments, nullptr);
  EXPECT_EQ(payments->owner, "");
  EXPECT_FALSE(payments->tier.has_value());
  EXPECT_FALSE(payments->customer_facing);
  EXPECT_EQ(config->FindService("billing"), nullptr);
}

TEST(ConfigTest, DefaultsApplyWhenKeysAbsent) {
  auto config = ParseConfig("services: []\n");
  ASSERT_TRUE(config.has_value()) << config.error().message;

  EXPECT_EQ(config->listen.ToString(), "127.0.0.1:8470");
  EXPECT_EQ(config->data_dir, "/etc/backout/backout-data");
  EXPECT_EQ(config->database, "sqlite:/etc/backout/backout-data/backout.db");
  EXPECT_TRUE(config->users.empty());
  EXPECT_TRUE(config->services.empty());
}

TEST(ConfigTest, LedgerCheckpointIntervalDefaultsToOneSecond) {
  auto config = ParseConfig("services: []\n");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->ledger.checkpoint_interval, std::chrono::seconds(1));

  config = ParseConfig("services: []\nledger: {checkpoint_interval: 250ms}\n");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->ledger.checkpoint_interval, std::chrono::milliseconds(250));

  config = ParseConfig("services: []\nledger: {checkpoint_interval: 0}\n");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->ledger.checkpoint_interval, core::Duration::zero());
}

TEST(ConfigTest, HttpLimitsHaveDefaults) {
  auto config = ParseConfig("services: []\n");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->http.request_timeout, std::chrono::seconds(10));
  EXPECT_EQ(config->http.idle_timeout, std::chrono::seconds(5));
  EXPECT_EQ(config->http.max_connections_per_client, 32);

  config = ParseConfig(
      "services: []\nhttp: {request_timeout: 250ms, idle_timeout: 1m, "
      "max_connections_per_client: 0}\n");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->http.request_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(config->http.idle_timeout, std::chrono::minutes(1));
  EXPECT_EQ(config->http.max_connections_per_client, 0);
}

TEST(ConfigTest, HttpLimitsRejectBadValues) {
  auto config = ParseConfig("services: []\nhttp: {request_timeout: 50ms}\n");
  ASSERT_FALSE(config.has_value());
  EXPECT_THAT(config.error().message,
              ::testing::HasSubstr("http.request_timeout: invalid request_timeout '50ms': use a "
                                   "duration from 100ms to 1h"));

  config = ParseConfig("services: []\nhttp: {idle_timeout: 2h}\n");
  ASSERT_FALSE(config.has_value());
  EXPECT_THAT(config.error().message,
              ::testing::HasSubstr("http.idle_timeout: invalid idle_timeout '2h'"));

  config = ParseConfig("services: []\nhttp: {max_connections_per_client: -1}\n");
  ASSERT_FALSE(config.has_value());
  EXPECT_THAT(config.error().message,
              ::testing::HasSubstr("http.max_connections_per_client: invalid "
                                   "max_connections_per_client -1: use a whole number of 1 or "
                                   "more, or 0 for no limit"));

  config = ParseConfig("services: []\nhttp: {read_timeout: 5s}\n");
  ASSERT_FALSE(config.has_value());
  EXPECT_THAT(config.error().message, ::testing::HasSubstr("http.read_timeout: unknown key"));
}

TEST(ConfigTest, LedgerCheckpointIntervalRejectsBadValues) {
  auto config = ParseConfig("services: []\nledger: {checkpoint_interval: 2h}\n");
  ASSERT_FALSE(config.has_value());
  EXPECT_THAT(config.error().message,
              ::testing::HasSubstr("ledger.checkpoint_interval: invalid checkpoint_interval '2h': "
                                   "use at most 1h, or 0"));

  config = ParseConfig("services: []\nledger: {checkpoint_interval: soon}\n");
  ASSERT_FALSE(config.has_value());
  EXPECT_THAT(config.error().message, ::testing::HasSubstr("soon"));

  config = ParseConfig("services: []\nledger: {checkpoint_every: 1s}\n");
  ASSERT_FALSE(config.has_value());
  EXPECT_THAT(config.error().message, ::testing::HasSubstr("checkpoint_interval"));
}

TEST(ConfigTest, DatabaseDefaultFollowsDataDir) {
  auto config = ParseConfig("data_dir: /srv/backout\n");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->database, "sqlite:/srv/backout/backout.db");
}

TEST(ConfigTest, RelativePathsResolveAgainstConfigFolder) {
  auto config = ParseConfig(R"(data_dir: data
database: sqlite:db/../state/backout.db
tls: {certificate: file:tls/cert.pem, private_key: file:/abs/key.pem}
)");
  ASSERT_TRUE(config.has_value()) << config.error().message;

  EXPECT_EQ(config->data_dir, "/etc/backout/data");
  EXPECT_EQ(config->database, "sqlite:/etc/backout/state/backout.db");
  ASSERT_TRUE(config->tls.has_value());
  EXPECT_EQ(config->tls->certificate.target(), "/etc/backout/tls/cert.pem");
  EXPECT_EQ(config->tls->private_key.target(), "/abs/key.pem");
}

TEST(ConfigTest, ListenAcceptsPortZero) {
  auto config = ParseConfig("listen: localhost:0\n");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->listen.host, "localhost");
  EXPECT_EQ(config->listen.port, 0);
}

TEST(ConfigTest, ParseKeepsSourceText) {
  auto config = ParseConfig(kMinimalConfig);
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->source_text, kMinimalConfig);
  EXPECT_EQ(config->source_name, kFileName);
}

TEST(ConfigTest, LoadReadsFileAndKeepsBytes) {
  backout::testing::TempDir dir;
  const std::filesystem::path path = dir.path() / "backout.yaml";
  const std::string text = std::string(kMinimalConfig) + "# trailing comment\r\n";
  std::ofstream(path, std::ios::binary) << text;

  auto config = Config::Load(path);
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->source_text, text);
  EXPECT_EQ(config->source_name, path.string());
  EXPECT_EQ(config->services.size(), 2u);
}

TEST(ConfigTest, LoadResolvesDefaultsAgainstFileFolder) {
  backout::testing::TempDir dir;
  const std::filesystem::path path = dir.path() / "backout.yaml";
  std::ofstream(path) << "metrics: {token: file:metrics.token}\n";

  auto config = Config::Load(path);
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->data_dir, dir.path() / "backout-data");
  ASSERT_TRUE(config->metrics.token.has_value());
  EXPECT_EQ(config->metrics.token->target(), (dir.path() / "metrics.token").string());
}

TEST(ConfigTest, LoadNamesFileInErrors) {
  backout::testing::TempDir dir;
  const std::filesystem::path path = dir.path() / "bad.yaml";
  std::ofstream(path) << "listen: 127.0.0.1:8470\nlisne: x\n";

  auto config = Config::Load(path);
  ASSERT_FALSE(config.has_value());
  EXPECT_EQ(config.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_TRUE(config.error().message.starts_with(path.string() + ":2: lisne: unknown key"))
      << config.error().message;
}

TEST(ConfigTest, LoadReportsMissingFile) {
  backout::testing::TempDir dir;
  const std::filesystem::path path = dir.path() / "missing.yaml";

  auto config = Config::Load(path);
  ASSERT_FALSE(config.has_value());
  EXPECT_EQ(config.error().code, core::ErrorCode::kNotFound);
  EXPECT_EQ(config.error().message,
            "cannot open config file " + path.string() + ": No such file or directory");
}

TEST(ConfigTest, LoadRejectsFolder) {
  backout::testing::TempDir dir;
  auto config = Config::Load(dir.path());
  ASSERT_FALSE(config.has_value());
  EXPECT_EQ(config.error().message, "cannot read config file " + dir.path().string() +
                                        ": it is a folder, give the YAML file's path");
}

TEST(ConfigTest, DeepNestingNamesLimit) {
  std::string text = "users: ";
  text += std::string(600, '[') + std::string(600, ']') + "\n";
  auto config = Config::Parse(text, "backout.yaml", "/etc/backout");
  ASSERT_FALSE(config.has_value());
  EXPECT_THAT(config.error().message,
              ::testing::StartsWith("backout.yaml:1: invalid YAML: nested too deeply, past the "
                                    "parser's maximum of 500 levels"));
}

TEST(ConfigTest, LoadRejectsDevice) {
  auto config = Config::Load("/dev/zero");
  ASSERT_FALSE(config.has_value());
  EXPECT_EQ(config.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_EQ(config.error().message,
            "config file /dev/zero is not a regular file; give the path of the YAML file");
}

// A FIFO without a writer is rejected at once instead of blocking the open.
TEST(ConfigTest, LoadRejectsFifo) {
  backout::testing::TempDir dir;
  const std::filesystem::path path = dir.path() / "backout.yaml";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  auto config = Config::Load(path);
  ASSERT_FALSE(config.has_value());
  EXPECT_THAT(config.error().message, ::testing::HasSubstr("is not a regular file"));
}

TEST(ConfigTest, LoadRejectsFileOverLimit) {
  backout::testing::TempDir dir;
  const std::filesystem::path path = dir.path() / "backout.yaml";
  {
    std::ofstream out(path);
    const std::string comment = "# " + std::string(1022, 'x') + "\n";
    for (int i = 0; i < 4 * 1024 + 1; ++i) out << comment;
  }
  auto config = Config::Load(path);
  ASSERT_FALSE(config.has_value());
  EXPECT_EQ(config.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_THAT(config.error().message,
              ::testing::HasSubstr("is larger than 4194304 bytes, the maximum for a config file"));
}

TEST(ConfigTest, KubernetesProviderLoads) {
  auto config = Config::Parse(R"(services:
  - name: checkout
    provider:
      kind: kubernetes
      kubeconfig: kube/config
      context: prod
      namespace: shop
      deployment: checkout
      impersonate: executor
      soak: 0s
      restart_limit: 2
      gitops: allow
)",
                              kFileName, kBaseDir);
  ASSERT_TRUE(config.has_value()) << config.error().message;
  const ProviderConfig& provider = config->services[0].provider;
  EXPECT_EQ(provider.kind, "kubernetes");
  EXPECT_EQ(provider.settings["kubeconfig"], "/etc/backout/kube/config");
  EXPECT_EQ(provider.settings["deployment"], "checkout");
  EXPECT_EQ(provider.settings["soak"], "0s");
  EXPECT_EQ(provider.settings["restart_limit"], 2);
  EXPECT_EQ(provider.settings["gitops"], "allow");
}

TEST(ConfigTest, KnownRolesListsEveryRole) {
  std::vector<std::string> roles(KnownRoles().begin(), KnownRoles().end());
  EXPECT_EQ(roles, (std::vector<std::string>{"admin", "engineering-lead", "devops-engineer",
                                             "auditor", "viewer", "ci"}));
}

// A config that must be rejected, and the exact message.
struct BadConfig {
  std::string name;
  std::string text;
  std::string message;
};

void PrintTo(const BadConfig& bad, std::ostream* out) { *out << bad.name; }

class BadConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigTest, RejectedWithExactMessage) {
  auto config = ParseConfig(GetParam().text);
  ASSERT_FALSE(config.has_value());
  EXPECT_EQ(config.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_EQ(config.error().message, GetParam().message);
}

const BadConfig kBadConfigs[] = {
    {"UnknownTopLevelKey", "listen: 127.0.0.1:8470\nlistne: 127.0.0.1:8471\n",
     "backout.yaml:2: listne: unknown key, expected one of: listen, database, data_dir, tls, "
     "metrics, http, policy, users, services, notifications, signals, review, ledger"},
    {"UnknownServiceKey", R"(services:
  - name: checkout
    envirnoment: production
    provider: {kind: command, run: [/opt/rollback]}
)",
     "backout.yaml:3: services[0].envirnoment: unknown key, expected one of: name, environment, "
     "owner, tier, customer_facing, depends_on, provider, checks, detection, reconcile_interval"},
    {"UnknownProviderKey", R"(services:
  - name: checkout
    provider: {kind: command, run: [/opt/rollback], retries: 3}
)",
     "backout.yaml:3: services[0].provider.retries: unknown key, expected one of: kind, run, "
     "status, history, readiness, timeout, check_timeout, kill_grace, working_dir, output_dir, "
     "env"},
    {"UnknownCheckKey", R"(services:
  - name: checkout
    provider: {kind: command, run: [/opt/a]}
    checks:
      - {name: smoke, kind: command, run: [/opt/smoke], status: [/opt/x]}
)",
     "backout.yaml:5: services[0].checks[0].status: unknown key, expected one of: name, kind, "
     "run, timeout, env"},
    {"UnknownClosureKey", R"(policy:
  closure:
    root_cause: true
    postmortem: true
)",
     "backout.yaml:4: policy.closure.postmortem: unknown key, expected one of: root_cause, "
     "recovered_or_no_go, review, action_items, retroactive_approval"},
    {"DuplicateKey", "listen: 127.0.0.1:8470\nlisten: 127.0.0.1:8471\n",
     "backout.yaml:2: listen: duplicate key (first given at line 1)"},
    {"InlineMetricsToken", "metrics:\n  token: hunter2\n",
     "backout.yaml:2: metrics.token: secrets must be references (env:NAME or file:PATH), not "
     "inline values"},
    {"InlineProviderEnvSecret", R"(services:
  - name: checkout
    provider:
      kind: command
      run: [/opt/rollback]
      env: {API_TOKEN: s3cret}
)",
     "backout.yaml:6: services[0].provider.env.API_TOKEN: secrets must be references (env:NAME or "
     "file:PATH), not inline values"},
    {"InlineTlsKey", "tls: {certificate: file:/c.pem, private_key: \"-----BEGIN KEY-----\"}\n",
     "backout.yaml:1: tls.private_key: secrets must be references (env:NAME or file:PATH), not "
     "inline values"},
    {"BadVariableReference", "metrics: {token: env:1TOKEN}\n",
     "backout.yaml:1: metrics.token: invalid secret reference 'env:1TOKEN': the variable name "
     "must contain only letters, digits and '_' and must not start with a digit"},
    {"UnknownUserRole", "users:\n  - {name: lead-1, roles: [lead]}\n",
     "backout.yaml:2: users[0].roles[0]: unknown role 'lead', expected one of: admin, "
     "engineering-lead, devops-engineer, auditor, viewer, ci"},
    {"UnknownPolicyRole", "policy:\n  decider_roles: [engineering-lead, cto]\n",
     "backout.yaml:2: policy.decider_roles[1]: unknown role 'cto', expected one of: admin, "
     "engineering-lead, devops-engineer, auditor, viewer, ci"},
    {"UserWithoutRoles", "users:\n  - {name: lead-1, roles: []}\n",
     "backout.yaml:2: users[0].roles: no roles given, expected at least one of: admin, "
     "engineering-lead, devops-engineer, auditor, viewer, ci"},
    {"UnknownDependency", R"(services:
  - name: checkout
    depends_on: [paymnts]
    provider: {kind: command, run: [/opt/rollback]}
)",
     "backout.yaml:3: services[0].depends_on[0]: unknown service 'paymnts': it is not defined "
     "under services"},
    {"UnknownUserService", R"(services:
  - name: checkout
    provider: {kind: command, run: [/opt/rollback]}
users:
  - {name: sre-1, roles: [devops-engineer], services: [chekout]}
)",
     "backout.yaml:5: users[0].services[0]: unknown service 'chekout': it is not defined under "
     "services"},
    {"DependencyCycle", R"(services:
  - name: checkout
    depends_on: [payments]
    provider: {kind: command, run: [/opt/a]}
  - name: payments
    depends_on:
      - ledger
      - checkout
    provider: {kind: command, run: [/opt/b]}
  - name: ledger
    provider: {kind: command, run: [/opt/c]}
)",
     "backout.yaml:8: services[1].depends_on[1]: dependency cycle: checkout -> payments -> "
     "checkout"},
    {"SelfDependency", R"(services:
  - name: checkout
    depends_on: [checkout]
    provider: {kind: command, run: [/opt/a]}
)",
     "backout.yaml:3: services[0].depends_on[0]: dependency cycle: checkout -> checkout"},
    {"DependencyListedTwice", R"(services:
  - name: checkout
    depends_on: [payments, payments]
    provider: {kind: command, run: [/opt/a]}
)",
     "backout.yaml:3: services[0].depends_on[1]: 'payments' is listed twice"},
    {"BadDuration", R"(services:
  - name: checkout
    provider:
      kind: command
      run: [/opt/rollback]
      timeout: 5x
)",
     "backout.yaml:6: services[0].provider.timeout: invalid duration '5x': unknown unit 'x', use "
     "ms, s, m or h"},
    {"PartialHourWindow", "policy:\n  break_glass_approval_window: 90m\n",
     "backout.yaml:2: policy.break_glass_approval_window: invalid window '90m': use a whole number "
     "of hours, such as 24h"},
    {"ZeroBreakGlassWindow", "policy:\n  break_glass_approval_window: 0h\n",
     "backout.yaml:2: policy.break_glass_approval_window: invalid duration '0h': must be longer "
     "than zero"},
    {"ListenWithoutPort", "listen: 8470\n",
     "backout.yaml:1: listen: invalid address '8470': expected HOST:PORT such as 127.0.0.1:8470"},
    {"ListenPortOutOfRange", "listen: 127.0.0.1:70000\n",
     "backout.yaml:1: listen: invalid address '127.0.0.1:70000': the port must be a number from 0 "
     "to 65535"},
    {"ListenBareIpv6", "listen: ::1:8470\n",
     "backout.yaml:1: listen: invalid address '::1:8470': put an IPv6 host in brackets, such as "
     "[::1]:8470"},
    {"UnsupportedDatabase", "database: mysql://backout@db/backout\n",
     "backout.yaml:1: database: unsupported database URL: expected sqlite:PATH or "
     "postgresql://USER@HOST/DATABASE"},
    {"MissingProviderRun", R"(services:
  - name: payments
    provider: {kind: command}
)",
     "backout.yaml:3: services[0].provider.run: missing required field"},
    {"MissingProvider", "services:\n  - name: checkout\n    environment: production\n",
     "backout.yaml:2: services[0].provider: missing required field"},
    {"MissingServiceName", R"(services:
  - provider: {kind: command, run: [/opt/a]}
)",
     "backout.yaml:2: services[0].name: missing required field"},
    {"RelativeRunPath", R"(services:
  - name: payments
    provider: {kind: command, run: [rollback.sh, --fast]}
)",
     "backout.yaml:3: services[0].provider.run[0]: 'rollback.sh' is not an absolute path: give "
     "the executable's full path, such as /opt/runbooks/rollback"},
    {"RelativeStatusPath", R"(services:
  - name: payments
    provider:
      kind: command
      run: [/opt/rollback]
      status:
        - bin/version
)",
     "backout.yaml:7: services[0].provider.status[0]: 'bin/version' is not an absolute path: give "
     "the executable's full path, such as /opt/runbooks/rollback"},
    {"EmptyRunCommand", R"(services:
  - name: payments
    provider: {kind: command, run: []}
)",
     "backout.yaml:3: services[0].provider.run: the command is empty: give the executable's "
     "absolute path, then its arguments"},
    {"DuplicateService", R"(services:
  - name: checkout
    provider: {kind: command, run: [/opt/a]}
  - name: checkout
    provider: {kind: command, run: [/opt/b]}
)",
     "backout.yaml:4: services[1].name: duplicate service name 'checkout' (first defined at line "
     "2)"},
    {"DuplicateUser", R"(users:
  - {name: lead-1, roles: [engineering-lead]}
  - {name: lead-1, roles: [auditor]}
)",
     "backout.yaml:3: users[1].name: duplicate user name 'lead-1' (first defined at line 2)"},
    {"DuplicateCheck", R"(services:
  - name: checkout
    provider: {kind: command, run: [/opt/a]}
    checks:
      - {name: smoke, kind: command, run: [/opt/smoke]}
      - {name: smoke, kind: command, run: [/opt/smoke2]}
)",
     "backout.yaml:6: services[0].checks[1]: duplicate check name 'smoke' (first defined at line "
     "5)"},
    {"StringWhereListExpected", R"(services:
  - name: checkout
    provider: {kind: command, run: /opt/rollback}
)",
     "backout.yaml:3: services[0].provider.run: expected a list, got a string"},
    {"NumberWhereListExpected", "users: 5\n",
     "backout.yaml:1: users: expected a list, got a number"},
    {"BooleanWhereListExpected", "users: true\n",
     "backout.yaml:1: users: expected a list, got a boolean"},
    {"QuotedNumberWhereListExpected", "users: '5'\n",
     "backout.yaml:1: users: expected a list, got a string"},
    {"ListWhereMappingExpected", "policy: [separation_of_duties]\n",
     "backout.yaml:1: policy: expected a mapping, got a list"},
    {"EmptyValue", "listen:\ndata_dir: /srv\n",
     "backout.yaml:1: listen: expected a string, got an empty value"},
    {"NotABoolean", R"(services:
  - name: checkout
    customer_facing: yes
    provider: {kind: command, run: [/opt/a]}
)",
     "backout.yaml:3: services[0].customer_facing: expected true or false, got 'yes'"},
    {"NotANumber", R"(services:
  - name: checkout
    tier: gold
    provider: {kind: command, run: [/opt/a]}
)",
     "backout.yaml:3: services[0].tier: expected a whole number, got 'gold'"},
    {"InvalidServiceName", R"(services:
  - name: check out
    provider: {kind: command, run: [/opt/a]}
)",
     "backout.yaml:2: services[0].name: invalid name 'check out': use up to 128 letters, digits, "
     "'.', '_' and '-', starting with a letter or digit"},
    {"UnknownProviderKind", R"(services:
  - name: checkout
    provider: {kind: helm, chart: checkout}
)",
     "backout.yaml:3: services[0].provider.kind: unknown provider kind 'helm', expected one of: "
     "codedeploy, command, git, kubernetes, launchdarkly, releases, unleash"},
    {"ReleasesRootRelative", R"(services:
  - name: checkout
    provider: {kind: releases, root: srv/checkout}
)",
     "backout.yaml:3: services[0].provider.root: 'srv/checkout' is not an absolute path: give the "
     "folder's full path, such as /var/lib/backout/work"},
    {"ReleasesMarkerWithSlash", R"(services:
  - name: checkout
    provider: {kind: releases, root: /srv/checkout, marker: ../REVISION}
)",
     "backout.yaml:3: services[0].provider.marker: '../REVISION' is not a file name: give a name "
     "without '/', such as .backout-release-complete"},
    {"ReleasesHealthUrlScheme", R"(services:
  - name: checkout
    provider: {kind: releases, root: /srv/checkout, health_url: ftp://127.0.0.1/x}
)",
     "backout.yaml:3: services[0].provider.health_url: 'ftp://127.0.0.1/x' is not an http:// or "
     "https:// URL"},
    {"GitBothVersionSources", R"(services:
  - name: checkout
    provider:
      kind: git
      repository: /srv/git/prod.git
      path: apps/checkout/values.yaml
      version_pattern: 'tag: (\S+)'
      version_key: image.tag
      work_dir: /var/lib/backout/git/checkout
)",
     "backout.yaml:7: services[0].provider.version_pattern: give exactly one of version_pattern "
     "(a regular expression with one group) and version_key (a dotted YAML key such as "
     "image.tag)"},
    {"GitNoVersionSource", R"(services:
  - name: checkout
    provider:
      kind: git
      repository: /srv/git/prod.git
      path: apps/checkout/values.yaml
      work_dir: /var/lib/backout/git/checkout
)",
     "backout.yaml:4: services[0].provider.version_pattern: give exactly one of version_pattern "
     "(a regular expression with one group) and version_key (a dotted YAML key such as "
     "image.tag)"},
    {"GitPatternWithoutGroup", R"(services:
  - name: checkout
    provider:
      kind: git
      repository: /srv/git/prod.git
      path: apps/checkout/values.yaml
      version_pattern: 'tag: \S+'
      work_dir: /var/lib/backout/git/checkout
)",
     "backout.yaml:7: services[0].provider.version_pattern: the pattern has 0 groups: give exactly "
     "one, around the version"},
    {"GitPathOutsideRepository", R"(services:
  - name: checkout
    provider:
      kind: git
      repository: /srv/git/prod.git
      path: ../values.yaml
      version_key: image.tag
      work_dir: /var/lib/backout/git/checkout
)",
     "backout.yaml:6: services[0].provider.path: '../values.yaml' is not a normal path inside the "
     "repository, such as apps/checkout/values.yaml"},
    {"GitUnknownCredentialRole", R"(services:
  - name: checkout
    provider:
      kind: git
      repository: https://git.example.com/prod.git
      path: apps/checkout/values.yaml
      version_key: image.tag
      work_dir: /var/lib/backout/git/checkout
      credentials: {token: env:GIT_TOKEN}
)",
     "backout.yaml:9: services[0].provider.credentials.token: unknown key, expected one of: "
     "username, password, ssh_key, ssh_passphrase"},
    {"GitPushAttemptsRange", R"(services:
  - name: checkout
    provider:
      kind: git
      repository: /srv/git/prod.git
      path: apps/checkout/values.yaml
      version_key: image.tag
      work_dir: /var/lib/backout/git/checkout
      push_attempts: 50
)",
     "backout.yaml:9: services[0].provider.push_attempts: expected a whole number from 1 to 10, "
     "got 50"},
    {"KubernetesProviderWithoutDeployment", R"(services:
  - name: checkout
    provider: {kind: kubernetes, kubeconfig: /etc/kubeconfig}
)",
     "backout.yaml:3: services[0].provider.deployment: missing required field"},
    {"KubernetesProviderBadGitOpsPolicy", R"(services:
  - name: checkout
    provider: {kind: kubernetes, kubeconfig: /etc/kubeconfig, deployment: web, gitops: ignore}
)",
     "backout.yaml:3: services[0].provider.gitops: 'ignore' is not one of: refuse, allow"},
    {"KubernetesProviderStatefulSet", R"(services:
  - name: checkout
    provider: {kind: kubernetes, kubeconfig: /etc/kubeconfig, statefulset: db}
)",
     "backout.yaml:3: services[0].provider.statefulset: unknown key, expected one of: kind, "
     "kubeconfig, context, namespace, deployment, impersonate, readiness_timeout, soak, "
     "poll_interval, request_timeout, restart_limit, gitops, gitops_grace"},
    {"MissingProviderKind", R"(services:
  - name: checkout
    provider: {run: [/opt/a]}
)",
     "backout.yaml:3: services[0].provider.kind: missing required field"},
    {"UnknownCheckKind", R"(services:
  - name: checkout
    provider: {kind: command, run: [/opt/a]}
    checks:
      - {name: smoke, kind: selenium}
)",
     "backout.yaml:5: services[0].checks[0].kind: unknown check kind 'selenium', expected one of: "
     "command, http, manual, prometheus"},
    {"BadEnvironmentVariableName", R"(services:
  - name: checkout
    provider:
      kind: command
      run: [/opt/a]
      env: {API-TOKEN: env:TOKEN}
)",
     "backout.yaml:6: services[0].provider.env.API-TOKEN: invalid environment variable name: use "
     "letters, digits and '_', not starting with a digit"},
    {"ReservedVariablePrefix", R"(services:
  - name: checkout
    provider:
      kind: command
      run: [/opt/a]
      env:
        BACKOUT_TARGET_VERSION: env:TARGET
)",
     "backout.yaml:7: services[0].provider.env.BACKOUT_TARGET_VERSION: the prefix BACKOUT_ is "
     "reserved for the inputs Backout passes to commands: rename the variable"},
    {"RelativeWorkingDir", R"(services:
  - name: checkout
    provider: {kind: command, run: [/opt/a], working_dir: work}
)",
     "backout.yaml:3: services[0].provider.working_dir: 'work' is not an absolute path: give the "
     "folder's full path, such as /var/lib/backout/work"},
    {"TlsWithoutKey", "tls: {certificate: file:/c.pem}\n",
     "backout.yaml:1: tls.private_key: missing required field"},
    {"TopLevelList", "- listen\n- services\n", "backout.yaml:1: expected a mapping, got a list"},
    {"EmptyFile", "# nothing here\n",
     "backout.yaml:1: the file is empty: give at least the services to manage"},
    {"TwoDocuments", "listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n",
     "backout.yaml:3: the file holds 2 YAML documents: put the whole configuration in one"},
    {"InvalidYaml", "listen: 127.0.0.1:8470\nservices: [a, b]]\ndata_dir: /srv\n",
     "backout.yaml:2: invalid YAML: illegal flow end"},
    {"UnterminatedList", "services: [checkout,\nusers: x\n",
     "backout.yaml:3: invalid YAML: end of sequence flow not found"},
};

INSTANTIATE_TEST_SUITE_P(Table, BadConfigTest, ::testing::ValuesIn(kBadConfigs),
                         [](const ::testing::TestParamInfo<BadConfig>& info) {
                           return info.param.name;
                         });

constexpr std::string_view kCodeDeployConfig = R"(services:
  - name: shop
    provider:
      kind: codedeploy
      application: shop
      deployment_group: prod
      region: eu-west-1
      endpoint: http://127.0.0.1:18900
      credentials: {access_key_id: env:SHOP_KEY, secret_access_key: file:secrets/aws}
      file_exists_behavior: RETAIN
      ignore_application_stop_failures: true
      timeout: 30m
      poll_interval: 10s
)";

TEST(ConfigCodeDeployTest, ProviderSettingsLoad) {
  auto config = ParseConfig(kCodeDeployConfig);
  ASSERT_TRUE(config.has_value()) << config.error().message;
  const json& settings = config->services[0].provider.settings;
  EXPECT_EQ(config->services[0].provider.kind, "codedeploy");
  EXPECT_EQ(settings["application"], "shop");
  EXPECT_EQ(settings["region"], "eu-west-1");
  EXPECT_EQ(settings["endpoint"], "http://127.0.0.1:18900");
  EXPECT_EQ(settings["file_exists_behavior"], "RETAIN");
  EXPECT_EQ(settings["ignore_application_stop_failures"], true);
  EXPECT_EQ(settings["timeout"], "30m");
}

TEST(ConfigCodeDeployTest, CredentialsStayReferences) {
  auto config = ParseConfig(kCodeDeployConfig);
  ASSERT_TRUE(config.has_value()) << config.error().message;
  const json& credentials = config->services[0].provider.settings["credentials"];
  EXPECT_EQ(credentials["access_key_id"], "env:SHOP_KEY");
  EXPECT_EQ(credentials["secret_access_key"], "file:/etc/backout/secrets/aws");
}

TEST(ConfigCodeDeployTest, RejectsUnknownFileExistsBehavior) {
  std::string text(kCodeDeployConfig);
  text.replace(text.find("RETAIN"), 6, "REPLACE");
  auto config = ParseConfig(text);
  ASSERT_FALSE(config.has_value());
  EXPECT_EQ(config.error().message,
            "backout.yaml:10: services[0].provider.file_exists_behavior: 'REPLACE' is not one of: "
            "DISALLOW, OVERWRITE, RETAIN");
}

TEST(ConfigCodeDeployTest, RejectsUnknownCredentialKey) {
  std::string text(kCodeDeployConfig);
  text.replace(text.find("access_key_id"), 13, "key_id");
  auto config = ParseConfig(text);
  ASSERT_FALSE(config.has_value());
  EXPECT_NE(config.error().message.find("credentials.key_id: unknown key"), std::string::npos)
      << config.error().message;
}

TEST(ConfigCodeDeployTest, RequiresTheDeploymentGroup) {
  std::string text(kCodeDeployConfig);
  text.erase(text.find("      deployment_group: prod\n"), 29);
  auto config = ParseConfig(text);
  ASSERT_FALSE(config.has_value());
  EXPECT_NE(config.error().message.find("deployment_group"), std::string::npos)
      << config.error().message;
}

constexpr std::string_view kUnleashConfig = R"(services:
  - name: checkout
    provider:
      kind: unleash
      url: http://127.0.0.1:4242
      flag: checkout.new-flow
      environment: production
      credentials: {api_token: env:UNLEASH_ADMIN_TOKEN, sdk_token: file:secrets/unleash-sdk}
      rollback: rollout-0
      audit_tag: false
      sdk_evaluation: [/usr/bin/node, /opt/backout/unleash/evaluate-flag.mjs]
      sdk_timeout: 20s
)";

TEST(ConfigUnleashTest, ProviderSettingsLoad) {
  auto config = ParseConfig(kUnleashConfig);
  ASSERT_TRUE(config.has_value()) << config.error().message;
  const json& settings = config->services[0].provider.settings;
  EXPECT_EQ(config->services[0].provider.kind, "unleash");
  EXPECT_EQ(settings["flag"], "checkout.new-flow");
  EXPECT_EQ(settings["rollback"], "rollout-0");
  EXPECT_EQ(settings["audit_tag"], false);
  EXPECT_EQ(settings["sdk_evaluation"][0], "/usr/bin/node");
  EXPECT_EQ(settings["credentials"]["api_token"], "env:UNLEASH_ADMIN_TOKEN");
  EXPECT_EQ(settings["credentials"]["sdk_token"], "file:/etc/backout/secrets/unleash-sdk");
}

TEST(ConfigUnleashTest, RejectsUnknownRollbackState) {
  std::string text(kUnleashConfig);
  text.replace(text.find("rollout-0"), 9, "rollout-5");
  auto config = ParseConfig(text);
  ASSERT_FALSE(config.has_value());
  EXPECT_EQ(config.error().message,
            "backout.yaml:9: services[0].provider.rollback: 'rollout-5' is not one of: off, on, "
            "rollout-0");
}

TEST(ConfigUnleashTest, RequiresCredentials) {
  std::string text(kUnleashConfig);
  size_t line = text.find("      credentials:");
  text.erase(line, text.find('\n', line) + 1 - line);
  auto config = ParseConfig(text);
  ASSERT_FALSE(config.has_value());
  EXPECT_NE(config.error().message.find("credentials"), std::string::npos)
      << config.error().message;
}

// A unique string standing in for a secret, so a leak is found by searching for it.
constexpr std::string_view kCanary = "canary-5b1e0c7d2f9a";

TEST(ConfigSecretTest, InlineSecretsAreNeverQuoted) {
  const std::string canary(kCanary);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"metrics: {token: " + canary + "}\n", "metrics.token"},
      {"tls: {certificate: file:/c.pem, private_key: " + canary + "}\n", "tls.private_key"},
      {"services:\n  - name: a\n    provider: {kind: command, run: [/opt/a], env: {T: " + canary +
           "}}\n",
       "services[0].provider.env.T"},
      {"services:\n  - name: a\n    provider: {kind: git, repository: /r.git, path: v.yaml, "
       "version_key: tag, work_dir: /w, credentials: {password: " +
           canary + "}}\n",
       "services[0].provider.credentials.password"},
      {"services:\n  - name: a\n    provider: {kind: git, repository: 'https://bot:" + canary +
           "@git.example.com/r.git', path: v.yaml, version_key: tag, work_dir: /w}\n",
       "services[0].provider.repository"},
      {"services:\n  - name: a\n    provider: {kind: codedeploy, application: a, deployment_group: "
       "g, region: us-east-1, credentials: {secret_access_key: " +
           canary + "}}\n",
       "services[0].provider.credentials.secret_access_key"},
      {"services:\n  - name: a\n    provider: {kind: command, run: [/opt/a]}\n    checks:\n"
       "      - {name: c, kind: command, run: [/opt/c], env: {T: " +
           canary + "}}\n",
       "services[0].checks[0].env.T"},
      // Inline secrets are found before any other error could quote them.
      {"listne: x\nmetrics: {token: " + canary + "}\n", "metrics.token"},
      {"database: postgresql://backout:" + canary + "@db/backout\n", "database"},
      {"database: postgresql://db/backout?sslmode=require&password=" + canary + "\n", "database"},
  };

  for (const auto& [text, field] : cases) {
    SCOPED_TRACE(field);
    auto config = ParseConfig(text);
    ASSERT_FALSE(config.has_value());
    EXPECT_EQ(config.error().message.find(canary), std::string::npos) << config.error().message;
    EXPECT_NE(config.error().message.find(field + ": "), std::string::npos)
        << config.error().message;
  }
}

TEST(ConfigTest, ReleasesProviderLoads) {
  auto config = ParseConfig(R"(services:
  - name: checkout
    provider:
      kind: releases
      root: /srv/checkout
      marker: REVISION
      restart: [/usr/bin/systemctl, restart, checkout]
      restart_timeout: 60s
      health_url: http://127.0.0.1:8080/healthz
)");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  const ProviderConfig& provider = config->services[0].provider;
  EXPECT_EQ(provider.kind, "releases");
  EXPECT_EQ(provider.settings, (json{{"root", "/srv/checkout"},
                                     {"marker", "REVISION"},
                                     {"restart", {"/usr/bin/systemctl", "restart", "checkout"}},
                                     {"restart_timeout", "60s"},
                                     {"health_url", "http://127.0.0.1:8080/healthz"}}));
}

TEST(ConfigTest, GitProviderLoads) {
  auto config = ParseConfig(R"(services:
  - name: checkout
    provider:
      kind: git
      repository: https://git.example.com/deploy/prod.git
      branch: main
      path: apps/checkout/values.yaml
      version_key: image.tag
      work_dir: /var/lib/backout/git/checkout
      suspend_automation: [clusters/prod/checkout-automation.yaml]
      push_attempts: 5
      verify_for: 0s
      credentials: {username: env:GIT_USER, password: file:secrets/git-token}
      ca_file: git-ca.pem
      controller_url: http://127.0.0.1:9000/apps/checkout
      controller_revision_pointer: /status/sync/revision
)");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  const ProviderConfig& provider = config->services[0].provider;
  EXPECT_EQ(provider.kind, "git");
  EXPECT_EQ(
      provider.settings["credentials"],
      (json{{"username", "env:GIT_USER"}, {"password", "file:/etc/backout/secrets/git-token"}}));
  EXPECT_EQ(provider.settings["suspend_automation"],
            json::array({"clusters/prod/checkout-automation.yaml"}));
  EXPECT_EQ(provider.settings["push_attempts"], 5);
  EXPECT_EQ(provider.settings["verify_for"], "0s");
  EXPECT_EQ(provider.settings["ca_file"], "/etc/backout/git-ca.pem");
}

TEST(ConfigTest, GitSshProviderLoads) {
  auto config = ParseConfig(R"(services:
  - name: checkout
    provider:
      kind: git
      repository: ssh://git@git.example.com:2222/deploy/prod.git
      path: apps/checkout/values.yaml
      version_key: image.tag
      work_dir: /var/lib/backout/git/checkout
      credentials: {ssh_key: file:secrets/git-key, ssh_passphrase: env:GIT_KEY_PASSPHRASE}
      known_hosts: git-known-hosts
)");
  ASSERT_TRUE(config.has_value()) << config.error().message;
  const ProviderConfig& provider = config->services[0].provider;
  EXPECT_EQ(provider.settings["known_hosts"], "/etc/backout/git-known-hosts");
  EXPECT_EQ(provider.settings["credentials"],
            (json{{"ssh_key", "file:/etc/backout/secrets/git-key"},
                  {"ssh_passphrase", "env:GIT_KEY_PASSPHRASE"}}));
}

TEST(ConfigSecretTest, PasswordInDatabaseUrlRejected) {
  auto config = ParseConfig("database: postgresql://backout:pw@db/backout\n");
  ASSERT_FALSE(config.has_value());
  EXPECT_EQ(config.error().message,
            "backout.yaml:1: database: the PostgreSQL URL contains a password, but secrets must "
            "not be written inline: remove it and set PGPASSWORD or PGPASSFILE in the server's "
            "environment");
}

// ---- Kind `launchdarkly` ----

constexpr std::string_view kLaunchDarklyConfig = R"(services:
  - name: checkout-web
    provider:
      kind: launchdarkly
      project: default
      environment: production
      flag: new-checkout
      credentials: {api_token: env:LD_API_TOKEN}
      action: rollout_to_zero
      new_variation: 0
      sdk_fallback: false
      propagation_grace: 0s
)";

TEST(ConfigLaunchDarklyTest, ProviderSettingsLoad) {
  auto config = ParseConfig(kLaunchDarklyConfig);
  ASSERT_TRUE(config.has_value()) << config.error().message;
  const json& settings = config->services[0].provider.settings;
  EXPECT_EQ(config->services[0].provider.kind, "launchdarkly");
  EXPECT_EQ(settings["flag"], "new-checkout");
  EXPECT_EQ(settings["action"], "rollout_to_zero");
  EXPECT_EQ(settings["new_variation"], "0");
  EXPECT_EQ(settings["sdk_fallback"], "false");
  EXPECT_EQ(settings["propagation_grace"], "0s");
  EXPECT_EQ(settings["credentials"]["api_token"], "env:LD_API_TOKEN");
}

TEST(ConfigLaunchDarklyTest, RolloutNeedsNewVariation) {
  std::string text(kLaunchDarklyConfig);
  text.erase(text.find("      new_variation: 0\n"), 23);
  auto config = ParseConfig(text);
  ASSERT_FALSE(config.has_value());
  EXPECT_NE(config.error().message.find("new_variation"), std::string::npos)
      << config.error().message;
}

TEST(ConfigLaunchDarklyTest, RequiresApiToken) {
  std::string text(kLaunchDarklyConfig);
  text.replace(text.find("api_token"), 9, "sdk_key");
  auto config = ParseConfig(text);
  ASSERT_FALSE(config.has_value());
  EXPECT_NE(config.error().message.find("credentials"), std::string::npos)
      << config.error().message;
}

}  // namespace
}  // namespace backout::app
