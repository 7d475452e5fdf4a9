// Proves the emulator with the real kubectl: each test runs kubectl against it with a fresh
// discovery cache and checks the output Kubernetes documents.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "emulator.h"
#include "fixtures.h"
#include "kubectl.h"
#include "support/temp_dir.h"

namespace backout::emulators::kubernetes {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

class KubectlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = Emulator::Start(FastEmulatorOptions());
    ASSERT_TRUE(started.has_value()) << started.error();
    emulator_ = std::move(*started);
    kubeconfig_ = dir_.path() / "kubeconfig";
    ASSERT_TRUE(emulator_->WriteKubeconfig(kubeconfig_));
  }

  KubectlResult Kubectl(const std::vector<std::string>& args, milliseconds timeout = seconds(30)) {
    return RunKubectl(kubeconfig_, dir_.path(), args, timeout);
  }

  // Applies revisions v1..vN of "web", each waited for.
  void ApplyVersions(int count, DeploymentSpec base = {}) {
    for (int version = 1; version <= count; ++version) {
      base.images = {"example/web:v" + std::to_string(version)};
      ASSERT_TRUE(ApplyRevision(*emulator_, "default", base)) << "version " << version;
    }
  }

  json Deployment() {
    return emulator_->cluster().Get(Resource::kDeployments, "default", "web").body;
  }

  json ReplicaSetWithImage(const std::string& image) {
    ApiResult list = emulator_->cluster().List(Resource::kReplicaSets, "default", LabelSelector(),
                                               FieldSelector());
    for (const json& rs : list.body["items"]) {
      if (rs["spec"]["template"]["spec"]["containers"][0]["image"] == image) return rs;
    }
    return nullptr;
  }

  static std::string Revision(const json& object) {
    return object["metadata"]["annotations"].value("deployment.kubernetes.io/revision", "");
  }

  std::string Image() { return Deployment()["spec"]["template"]["spec"]["containers"][0]["image"]; }

  std::vector<RecordedRequest> Patches() {
    std::vector<RecordedRequest> patches;
    for (const RecordedRequest& request : emulator_->Requests()) {
      if (request.method == "PATCH") patches.push_back(request);
    }
    return patches;
  }

  testing::TempDir dir_;
  std::filesystem::path kubeconfig_;
  std::unique_ptr<Emulator> emulator_;
};

TEST_F(KubectlTest, GetDeploymentPrintsTable) {
  ApplyVersions(1);
  KubectlResult result = Kubectl({"get", "deployments"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("NAME   READY   UP-TO-DATE   AVAILABLE   AGE"));
  EXPECT_THAT(result.out, ::testing::ContainsRegex("web +3/3 +3 +3 "));
}

TEST_F(KubectlTest, GetReplicaSetsWideShowsImages) {
  ApplyVersions(2);
  KubectlResult result = Kubectl({"get", "rs", "-o", "wide"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, ::testing::ContainsRegex("web-[a-z0-9]+ +3 +3 +3 .*example/web:v2"));
  EXPECT_THAT(result.out, ::testing::ContainsRegex("web-[a-z0-9]+ +0 +0 +0 .*example/web:v1"));
}

TEST_F(KubectlTest, GetPodsShowsCrashLoopBackOff) {
  emulator_->cluster().SetPodBehaviour("example/web:v2", PodBehaviour{PodFault::kCrashLoop, {}});
  ApplyVersions(1);
  emulator_->cluster().Apply("default", DeploymentManifest({.images = {"example/web:v2"}}));
  std::this_thread::sleep_for(milliseconds(500));
  KubectlResult result = Kubectl({"get", "pods"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, ::testing::ContainsRegex("0/1 +CrashLoopBackOff"));
}

TEST_F(KubectlTest, KubectlSendsBearerToken) {
  ApplyVersions(1);
  ASSERT_EQ(Kubectl({"get", "deployment", "web"}).exit_code, 0);
  bool authenticated = false;
  for (const RecordedRequest& request : emulator_->Requests()) {
    if (request.target.starts_with("/apis/apps/v1/namespaces/default/deployments")) {
      EXPECT_EQ(request.user, "emulator-admin");
      authenticated = true;
    }
  }
  EXPECT_TRUE(authenticated);
}

TEST_F(KubectlTest, WrongTokenIsUnauthorized) {
  ApplyVersions(1);
  std::filesystem::path bad = dir_.path() / "bad-kubeconfig";
  ASSERT_TRUE(emulator_->WriteKubeconfig(bad));
  std::string text;
  {
    std::ifstream in(bad);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  text.replace(text.find(emulator_->token()), emulator_->token().size(), "wrong-token");
  std::ofstream(bad) << text;
  KubectlResult result = RunKubectl(bad, dir_.path(), {"get", "deployments"});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.err, HasSubstr("You must be logged in to the server"));
}

TEST_F(KubectlTest, ClientCertificateAndTokenFileAuthenticate) {
  ApplyVersions(1);
  for (KubeconfigAuth auth : {KubeconfigAuth::kClientCertificate, KubeconfigAuth::kTokenFile}) {
    std::filesystem::path path =
        dir_.path() / ("kubeconfig-" + std::to_string(static_cast<int>(auth)));
    ASSERT_TRUE(emulator_->WriteKubeconfig(path, {.auth = auth}));
    KubectlResult result = RunKubectl(path, dir_.path(), {"get", "deployment", "web"});
    EXPECT_EQ(result.exit_code, 0) << result.err;
  }
  bool certificate_user = false;
  for (const RecordedRequest& request : emulator_->Requests()) {
    if (request.user == "emulator-client") certificate_user = true;
  }
  EXPECT_TRUE(certificate_user);
}

TEST_F(KubectlTest, UndoRollsBackToPreviousRevision) {
  ApplyVersions(2);
  json v1 = ReplicaSetWithImage("example/web:v1");

  KubectlResult result = Kubectl({"rollout", "undo", "deployment/web"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "deployment.apps/web rolled back\n");
  EXPECT_EQ(Image(), "example/web:v1");

  // One JSON patch: the old template without its hash label, and the annotations.
  std::vector<RecordedRequest> patches = Patches();
  ASSERT_EQ(patches.size(), 1u);
  EXPECT_EQ(patches[0].content_type, "application/json-patch+json");
  json patch = json::parse(patches[0].body);
  ASSERT_EQ(patch.size(), 2u);
  EXPECT_EQ(patch[0]["op"], "replace");
  EXPECT_EQ(patch[0]["path"], "/spec/template");
  json expected_template = v1["spec"]["template"];
  expected_template["metadata"]["labels"].erase("pod-template-hash");
  EXPECT_EQ(patch[0]["value"], expected_template);
  EXPECT_EQ(patch[1]["path"], "/metadata/annotations");
  EXPECT_EQ(patch[1]["value"], json({{"deployment.kubernetes.io/revision", "2"}}));

  ASSERT_TRUE(emulator_->WaitForRollout("default", "web", seconds(10)));
  json reused = ReplicaSetWithImage("example/web:v1");
  EXPECT_EQ(reused["metadata"]["name"], v1["metadata"]["name"]);
  EXPECT_EQ(Revision(reused), "3");
}

TEST_F(KubectlTest, UndoToRevisionRenumbersHistory) {
  ApplyVersions(3);
  KubectlResult result = Kubectl({"rollout", "undo", "deployment/web", "--to-revision=1"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(Image(), "example/web:v1");
  ASSERT_TRUE(emulator_->WaitForRollout("default", "web", seconds(10)));

  // Revision 1 disappears from the history and comes back as 4.
  KubectlResult history = Kubectl({"rollout", "history", "deployment/web"});
  ASSERT_EQ(history.exit_code, 0) << history.err;
  EXPECT_EQ(history.out,
            "deployment.apps/web \nREVISION  CHANGE-CAUSE\n2         <none>\n3         <none>\n"
            "4         <none>\n\n");
  EXPECT_EQ(ReplicaSetWithImage("example/web:v1")["metadata"]["annotations"].value(
                "deployment.kubernetes.io/revision-history", ""),
            "1");
}

TEST_F(KubectlTest, UndoToCurrentRevisionIsSkipped) {
  ApplyVersions(2);
  KubectlResult result = Kubectl({"rollout", "undo", "deployment/web", "--to-revision=2"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out,
            "deployment.apps/web skipped rollback (current template already matches revision 2)\n");
  EXPECT_TRUE(Patches().empty());
}

TEST_F(KubectlTest, UndoToMissingRevisionFails) {
  ApplyVersions(2);
  KubectlResult result = Kubectl({"rollout", "undo", "deployment/web", "--to-revision=7"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("unable to find specified revision 7 in history"));
}

TEST_F(KubectlTest, UndoWithoutHistoryFails) {
  ApplyVersions(1);
  KubectlResult result = Kubectl({"rollout", "undo", "deployment/web"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("no rollout history found for deployment \"web\""));
}

TEST_F(KubectlTest, UndoAfterZeroHistoryLimitFails) {
  ApplyVersions(3, DeploymentSpec{.revision_history_limit = 0});
  ASSERT_TRUE(WaitForReplicaSetCount(*emulator_, "default", "web", 1));
  KubectlResult result = Kubectl({"rollout", "undo", "deployment/web"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("no rollout history found for deployment \"web\""));
}

TEST_F(KubectlTest, UndoOfPausedDeploymentIsRefused) {
  ApplyVersions(2);
  KubectlResult pause = Kubectl({"rollout", "pause", "deployment/web"});
  ASSERT_EQ(pause.exit_code, 0) << pause.err;
  EXPECT_EQ(pause.out, "deployment.apps/web paused\n");

  KubectlResult result = Kubectl({"rollout", "undo", "deployment/web"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("you cannot rollback a paused deployment; resume it first"));
  EXPECT_EQ(Image(), "example/web:v2");

  KubectlResult resume = Kubectl({"rollout", "resume", "deployment/web"});
  ASSERT_EQ(resume.exit_code, 0) << resume.err;
  EXPECT_FALSE(Deployment()["spec"].value("paused", false));
}

TEST_F(KubectlTest, ServerDryRunChangesNothing) {
  ApplyVersions(2);
  KubectlResult result = Kubectl({"rollout", "undo", "deployment/web", "--dry-run=server"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "deployment.apps/web rolled back (server dry run)\n");
  EXPECT_EQ(Image(), "example/web:v2");
}

TEST_F(KubectlTest, UndoKeepsLastAppliedConfiguration) {
  ApplyVersions(1);
  ASSERT_TRUE(ApplyRevision(*emulator_, "default", {.images = {"example/web:v2"}}, true));
  KubectlResult result = Kubectl({"rollout", "undo", "deployment/web"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  // kubectl keeps the annotation, so the next apply compares against v2.
  json annotations = json::parse(Patches().at(0).body)[1]["value"];
  EXPECT_TRUE(annotations.contains("kubectl.kubernetes.io/last-applied-configuration"));
}

TEST_F(KubectlTest, HistoryShowsChangeCauseAndTemplate) {
  ApplyVersions(1, DeploymentSpec{.change_cause = "deploy v1"});
  ASSERT_TRUE(ApplyRevision(*emulator_, "default",
                            {.images = {"example/web:v2"}, .change_cause = "deploy v2"}));
  KubectlResult history = Kubectl({"rollout", "history", "deployment/web"});
  ASSERT_EQ(history.exit_code, 0) << history.err;
  EXPECT_EQ(
      history.out,
      "deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         deploy v1\n2         deploy v2\n\n");

  KubectlResult one = Kubectl({"rollout", "history", "deployment/web", "--revision=1"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_THAT(one.out, HasSubstr("deployment.apps/web with revision #1"));
  EXPECT_THAT(one.out, HasSubstr("Image:\texample/web:v1"));

  // After an undo the restored revision brings its change cause along.
  ASSERT_EQ(Kubectl({"rollout", "undo", "deployment/web"}).exit_code, 0);
  EXPECT_EQ(Deployment()["metadata"]["annotations"]["kubernetes.io/change-cause"], "deploy v1");
}

TEST_F(KubectlTest, StatusWaitsForReusedReplicaSet) {
  ApplyVersions(2);
  emulator_->cluster().SetPodBehaviour("example/web:v1",
                                       PodBehaviour{PodFault::kNone, milliseconds(600)});
  json v1 = ReplicaSetWithImage("example/web:v1");
  ASSERT_EQ(Kubectl({"rollout", "undo", "deployment/web"}).exit_code, 0);
  uint64_t undone_at = emulator_->cluster().ResourceVersion();

  KubectlResult status = Kubectl({"rollout", "status", "deployment/web", "--timeout=30s"});
  auto finished = SystemClock::now();
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("Waiting for deployment \"web\" rollout to finish"));
  EXPECT_THAT(status.out, HasSubstr("deployment \"web\" successfully rolled out"));

  // The controller bumped the reused ReplicaSet's revision and made all its replicas ready
  // before kubectl saw success.
  std::optional<SystemClock::time_point> bumped;
  std::optional<SystemClock::time_point> ready;
  auto events = emulator_->cluster().EventsAfter(Resource::kReplicaSets, undone_at);
  ASSERT_TRUE(events.has_value());
  for (const WatchEvent& event : *events) {
    if (event.object["metadata"]["name"] != v1["metadata"]["name"]) continue;
    if (!bumped && Revision(event.object) == "3") bumped = event.time;
    if (!ready && event.object.value("/status/readyReplicas"_json_pointer, 0) == 3) {
      ready = event.time;
    }
  }
  ASSERT_TRUE(bumped.has_value());
  ASSERT_TRUE(ready.has_value());
  EXPECT_LE(*bumped, *ready);
  EXPECT_LE(*ready, finished);
}

TEST_F(KubectlTest, StatusReportsProgressDeadline) {
  emulator_->cluster().SetPodBehaviour("example/web:v2", PodBehaviour{PodFault::kImagePull, {}});
  ApplyVersions(1, DeploymentSpec{.progress_deadline_seconds = 1});
  emulator_->cluster().Apply("default", DeploymentManifest({.images = {"example/web:v2"},
                                                            .progress_deadline_seconds = 1}));
  KubectlResult status = Kubectl({"rollout", "status", "deployment/web", "--timeout=30s"});
  EXPECT_EQ(status.exit_code, 1);
  EXPECT_THAT(status.err, HasSubstr("deployment \"web\" exceeded its progress deadline"));
}

TEST_F(KubectlTest, StatusKeepsWaitingWhilePodsCrash) {
  emulator_->cluster().SetPodBehaviour("example/web:v2", PodBehaviour{PodFault::kCrashLoop, {}});
  ApplyVersions(1);
  emulator_->cluster().Apply("default", DeploymentManifest({.images = {"example/web:v2"}}));
  KubectlResult status = Kubectl({"rollout", "status", "deployment/web", "--timeout=3s"});
  EXPECT_EQ(status.exit_code, 1);
  EXPECT_THAT(status.err, HasSubstr("timed out waiting for the condition"));
}

}  // namespace
}  // namespace backout::emulators::kubernetes
