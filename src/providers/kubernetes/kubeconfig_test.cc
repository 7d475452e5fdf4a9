#include "providers/kubernetes/kubeconfig.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "providers/kubernetes/exec_credential.h"
#include "support/temp_dir.h"

namespace backout::providers::kubernetes {
namespace {

namespace fs = std::filesystem;

class KubeconfigTest : public ::testing::Test {
 protected:
  fs::path Write(const std::string& name, const std::string& text, bool executable = false) {
    fs::path path = dir_.path() / name;
    std::ofstream(path) << text;
    if (executable) ::chmod(path.c_str(), 0755);
    return path;
  }

  fs::path WriteConfig(const std::string& users) {
    return Write("config",
                 "apiVersion: v1\n"
                 "kind: Config\n"
                 "current-context: prod\n"
                 "clusters:\n"
                 "- name: prod-cluster\n"
                 "  cluster:\n"
                 "    server: https://127.0.0.1:6443/\n"
                 "    certificate-authority-data: " +
                     std::string("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==") +
                     "\n"
                     "- name: staging-cluster\n"
                     "  cluster:\n"
                     "    server: https://127.0.0.1:7443\n"
                     "    certificate-authority: certs/ca.pem\n"
                     "contexts:\n"
                     "- name: prod\n"
                     "  context: {cluster: prod-cluster, user: prod-user, namespace: shop}\n"
                     "- name: staging\n"
                     "  context: {cluster: staging-cluster, user: staging-user}\n"
                     "users:\n" +
                     users);
  }

  testing::TempDir dir_;
};

TEST_F(KubeconfigTest, CurrentContextWithTokenAndCaData) {
  fs::path path = WriteConfig(
      "- name: prod-user\n  user: {token: secret-token}\n"
      "- name: staging-user\n  user: {tokenFile: token.txt}\n");
  auto access = LoadKubeconfig(path, "");
  ASSERT_TRUE(access.has_value()) << access.error().message;
  EXPECT_EQ(access->context, "prod");
  EXPECT_EQ(access->server, "https://127.0.0.1:6443");
  EXPECT_EQ(access->ca_pem, "-----BEGIN CERTIFICATE-----\n");
  EXPECT_EQ(access->token, "secret-token");
  EXPECT_EQ(access->ns, "shop");
}

TEST_F(KubeconfigTest, NamedContextResolvesRelativePaths) {
  fs::path path = WriteConfig(
      "- name: prod-user\n  user: {token: secret-token}\n"
      "- name: staging-user\n  user: {tokenFile: token.txt}\n");
  auto access = LoadKubeconfig(path, "staging");
  ASSERT_TRUE(access.has_value()) << access.error().message;
  EXPECT_EQ(access->ca_file, (dir_.path() / "certs/ca.pem").string());
  EXPECT_EQ(access->token_file, (dir_.path() / "token.txt").string());
  EXPECT_TRUE(access->ns.empty());
}

TEST_F(KubeconfigTest, MissingContextListsKnownOnes) {
  fs::path path = WriteConfig("- name: prod-user\n  user: {token: secret-token}\n");
  auto access = LoadKubeconfig(path, "dev");
  ASSERT_FALSE(access.has_value());
  EXPECT_EQ(access.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(access.error().message.find("context \"dev\" not found; contexts there: prod, staging"),
            std::string::npos);
}

TEST_F(KubeconfigTest, ClientCertificateDataIsDecoded) {
  fs::path path = WriteConfig(
      "- name: prod-user\n  user:\n    client-certificate-data: Y2VydA==\n"
      "    client-key-data: a2V5\n");
  auto access = LoadKubeconfig(path, "");
  ASSERT_TRUE(access.has_value()) << access.error().message;
  EXPECT_EQ(access->client_cert_pem, "cert");
  EXPECT_EQ(access->client_key_pem, "key");
}

TEST_F(KubeconfigTest, ExecPluginIsRead) {
  fs::path path = WriteConfig(
      "- name: prod-user\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
      "      command: aws\n      args: [eks, get-token, --cluster-name, prod]\n"
      "      env: [{name: AWS_PROFILE, value: prod}]\n      provideClusterInfo: true\n");
  auto access = LoadKubeconfig(path, "");
  ASSERT_TRUE(access.has_value()) << access.error().message;
  ASSERT_TRUE(access->exec.has_value());
  EXPECT_EQ(access->exec->command, "aws");
  EXPECT_EQ(access->exec->args.size(), 4u);
  EXPECT_EQ(access->exec->env[0].first, "AWS_PROFILE");
  EXPECT_TRUE(access->exec->provide_cluster_info);
}

TEST_F(KubeconfigTest, UnsupportedCredentialsAreRejected) {
  fs::path path = WriteConfig("- name: prod-user\n  user:\n    auth-provider: {name: gcp}\n");
  auto access = LoadKubeconfig(path, "");
  ASSERT_FALSE(access.has_value());
  EXPECT_NE(access.error().message.find("auth-provider"), std::string::npos);

  path = WriteConfig("- name: prod-user\n  user: {username: admin, password: hunter2}\n");
  access = LoadKubeconfig(path, "");
  ASSERT_FALSE(access.has_value());
  EXPECT_EQ(access.error().message.find("hunter2"), std::string::npos);
}

TEST_F(KubeconfigTest, PlainHttpWithCredentialsIsRejected) {
  fs::path path = Write("config",
                        "current-context: c\n"
                        "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:8080'}}]\n"
                        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                        "users: [{name: u, user: {token: secret-token}}]\n");
  auto access = LoadKubeconfig(path, "");
  ASSERT_FALSE(access.has_value());
  EXPECT_NE(access.error().message.find("only sent over https"), std::string::npos);
  EXPECT_EQ(access.error().message.find("secret-token"), std::string::npos);
}

TEST_F(KubeconfigTest, UnreadableFileNamesPath) {
  auto access = LoadKubeconfig(dir_.path() / "missing", "");
  ASSERT_FALSE(access.has_value());
  EXPECT_NE(access.error().message.find("missing"), std::string::npos);
}

TEST_F(KubeconfigTest, ExecPluginReturnsToken) {
  fs::path info = dir_.path() / "exec-info.json";
  fs::path script =
      Write("plugin.sh",
            "#!/bin/sh\n"
            "printf '%s' \"$KUBERNETES_EXEC_INFO\" > " +
                info.string() +
                "\n"
                "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
                "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"exec-token-'$PROFILE'\","
                "\"expirationTimestamp\":\"2099-01-01T00:00:00Z\"}}'\n",
            true);
  ExecPlugin plugin{"client.authentication.k8s.io/v1",
                    script.string(),
                    {},
                    {{"PROFILE", "prod"}},
                    true,
                    "",
                    dir_.path()};
  ClusterAccess cluster;
  cluster.server = "https://127.0.0.1:6443";
  auto credential = RunExecPlugin(plugin, cluster, std::chrono::seconds(10));
  ASSERT_TRUE(credential.has_value()) << credential.error().message;
  EXPECT_EQ(credential->token, "exec-token-prod");
  ASSERT_TRUE(credential->expires_at.has_value());

  std::ifstream in(info);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  auto parsed = nlohmann::json::parse(text);
  EXPECT_EQ(parsed["kind"], "ExecCredential");
  EXPECT_EQ(parsed["spec"]["interactive"], false);
  EXPECT_EQ(parsed["spec"]["cluster"]["server"], "https://127.0.0.1:6443");
}

TEST_F(KubeconfigTest, FailingExecPluginIsUnauthenticated) {
  fs::path script = Write("plugin.sh",
                          "#!/bin/sh\necho '{\"status\":{\"token\":\"leaked\"}}'\n"
                          "echo 'no SSO session' >&2\nexit 3\n",
                          true);
  ExecPlugin plugin{
      "client.authentication.k8s.io/v1", script.string(), {}, {}, false, "", dir_.path()};
  auto credential = RunExecPlugin(plugin, ClusterAccess{}, std::chrono::seconds(10));
  ASSERT_FALSE(credential.has_value());
  EXPECT_EQ(credential.error().code, core::ErrorCode::kUnauthenticated);
  EXPECT_NE(credential.error().message.find("no SSO session"), std::string::npos);
  EXPECT_EQ(credential.error().message.find("leaked"), std::string::npos);
}

TEST_F(KubeconfigTest, MissingExecPluginShowsInstallHint) {
  ExecPlugin plugin{"client.authentication.k8s.io/v1",
                    "no-such-plugin-here",
                    {},
                    {},
                    false,
                    "install it with apt",
                    dir_.path()};
  auto credential = RunExecPlugin(plugin, ClusterAccess{}, std::chrono::seconds(10));
  ASSERT_FALSE(credential.has_value());
  EXPECT_NE(credential.error().message.find("install it with apt"), std::string::npos);
}

TEST(Base64Test, DecodesWithAndWithoutPadding) {
  EXPECT_EQ(DecodeBase64("aGVsbG8="), "hello");
  EXPECT_EQ(DecodeBase64("aGVsbG8"), "hello");
  EXPECT_EQ(DecodeBase64("aGVs\nbG8="), "hello");
  EXPECT_FALSE(DecodeBase64("a*b").has_value());
}

}  // namespace
}  // namespace backout::providers::kubernetes
