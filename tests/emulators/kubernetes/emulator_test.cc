// Tests of the emulated cluster itself, through its C++ interface. kubectl_test.cc drives the same
// emulator with the real kubectl.

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "emulator.h"
#include "fixtures.h"

namespace backout::emulators::kubernetes {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = Emulator::Start(FastEmulatorOptions());
    ASSERT_TRUE(started.has_value()) << started.error();
    emulator_ = std::move(*started);
  }

  json Deployment(const std::string& name = "web") {
    return emulator_->cluster().Get(Resource::kDeployments, "default", name).body;
  }

  // The ReplicaSets of "web", sorted by name.
  std::vector<json> ReplicaSets() {
    ApiResult list = emulator_->cluster().List(Resource::kReplicaSets, "default",
                                               *LabelSelector::Parse("app=web"), FieldSelector());
    std::vector<json> items(list.body["items"].begin(), list.body["items"].end());
    return items;
  }

  json ReplicaSetWithImage(const std::string& image) {
    for (const json& rs : ReplicaSets()) {
      if (rs["spec"]["template"]["spec"]["containers"][0]["image"] == image) return rs;
    }
    return nullptr;
  }

  std::vector<json> Pods() {
    ApiResult list =
        emulator_->cluster().List(Resource::kPods, "default", LabelSelector(), FieldSelector());
    return {list.body["items"].begin(), list.body["items"].end()};
  }

  static std::string Annotation(const json& object, const std::string& key) {
    return object["metadata"].value("annotations", json::object()).value(key, "");
  }

  static json Condition(const json& deployment, const std::string& type) {
    for (const json& condition : deployment["status"].value("conditions", json::array())) {
      if (condition["type"] == type) return condition;
    }
    return nullptr;
  }

  // Sends the JSON patch `kubectl rollout undo` sends: the target template without its hash
  // label, and the annotations.
  ApiResult PatchTemplateTo(const json& rs) {
    json template_spec = rs["spec"]["template"];
    template_spec["metadata"]["labels"].erase("pod-template-hash");
    json patch =
        json::array({{{"op", "replace"}, {"path", "/spec/template"}, {"value", template_spec}},
                     {{"op", "replace"},
                      {"path", "/metadata/annotations"},
                      {"value",
                       {{"deployment.kubernetes.io/revision",
                         Annotation(Deployment(), "deployment.kubernetes.io/revision")}}}}});
    return emulator_->cluster().Patch(Resource::kDeployments, "default", "web", PatchType::kJson,
                                      patch.dump(), false);
  }

  std::unique_ptr<Emulator> emulator_;
};

TEST_F(ClusterTest, CreateAppliesDefaults) {
  ASSERT_TRUE(ApplyRevision(*emulator_, "default", DeploymentSpec{}));
  json d = Deployment();
  EXPECT_EQ(d["spec"]["revisionHistoryLimit"], 10);
  EXPECT_EQ(d["spec"]["progressDeadlineSeconds"], 600);
  EXPECT_EQ(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
  EXPECT_EQ(d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");
  EXPECT_EQ(d["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"],
            "/dev/termination-log");
  EXPECT_TRUE(d["spec"]["template"]["metadata"]["creationTimestamp"].is_null());
  EXPECT_EQ(d["metadata"]["generation"], 1);
}

TEST_F(ClusterTest, FirstRolloutCreatesRevisionOne) {
  ASSERT_TRUE(ApplyRevision(*emulator_, "default", DeploymentSpec{}));
  std::vector<json> sets = ReplicaSets();
  ASSERT_EQ(sets.size(), 1u);
  const json& rs = sets[0];
  std::string hash = rs["metadata"]["labels"]["pod-template-hash"];
  EXPECT_EQ(rs["metadata"]["name"], "web-" + hash);
  EXPECT_EQ(Annotation(rs, "deployment.kubernetes.io/revision"), "1");
  EXPECT_EQ(Annotation(rs, "deployment.kubernetes.io/desired-replicas"), "3");
  EXPECT_EQ(Annotation(rs, "deployment.kubernetes.io/max-replicas"), "4");
  EXPECT_EQ(rs["spec"]["selector"]["matchLabels"]["pod-template-hash"], hash);
  EXPECT_EQ(rs["metadata"]["ownerReferences"][0]["uid"], Deployment()["metadata"]["uid"]);
  EXPECT_EQ(Pods().size(), 3u);

  json d = Deployment();
  EXPECT_EQ(Annotation(d, "deployment.kubernetes.io/revision"), "1");
  EXPECT_EQ(Condition(d, "Available")["status"], "True");
  EXPECT_EQ(Condition(d, "Progressing")["reason"], "NewReplicaSetAvailable");
  EXPECT_EQ(d["status"]["updatedReplicas"], 3);
  EXPECT_EQ(d["status"]["availableReplicas"], 3);
}

TEST_F(ClusterTest, TemplateChangeCreatesNextRevision) {
  ASSERT_TRUE(ApplyRevision(*emulator_, "default", DeploymentSpec{}));
  ASSERT_TRUE(ApplyRevision(*emulator_, "default", DeploymentSpec{.images = {"example/web:v2"}}));
  json v1 = ReplicaSetWithImage("example/web:v1");
  json v2 = ReplicaSetWithImage("example/web:v2");
  ASSERT_FALSE(v1.is_null());
  ASSERT_FALSE(v2.is_null());
  EXPECT_EQ(Annotation(v2, "deployment.kubernetes.io/revision"), "2");
  EXPECT_EQ(v1["spec"]["replicas"], 0);
  EXPECT_EQ(v2["spec"]["replicas"], 3);
  EXPECT_EQ(Annotation(Deployment(), "deployment.kubernetes.io/revision"), "2");
  EXPECT_EQ(Deployment()["metadata"]["generation"], 2);
}

TEST_F(ClusterTest, RollingUpdateRespectsSurgeAndUnavailability) {
  ASSERT_TRUE(ApplyRevision(*emulator_, "default", DeploymentSpec{.replicas = 4}));
  emulator_->SetControllersRunning(false);
  uint64_t before = emulator_->cluster().ResourceVersion();
  std::map<std::string, int64_t> spec_replicas;
  std::map<std::string, int64_t> available;
  for (const json& rs : ReplicaSets()) {
    spec_replicas[rs["metadata"]["name"]] = rs["spec"]["replicas"];
    available[rs["metadata"]["name"]] = rs["status"].value("availableReplicas", 0);
  }
  emulator_->SetControllersRunning(true);
  ASSERT_TRUE(ApplyRevision(*emulator_, "default",
                            DeploymentSpec{.images = {"example/web:v2"}, .replicas = 4}));

  // With 4 replicas and 25%: at most 5 pods wanted at once, at least 3 available.
  int64_t most_wanted = 0;
  int64_t least_available = 4;
  auto events = emulator_->cluster().EventsAfter(Resource::kReplicaSets, before);
  ASSERT_TRUE(events.has_value());
  for (const WatchEvent& event : *events) {
    std::string name = event.object["metadata"]["name"];
    spec_replicas[name] = event.object["spec"].value("replicas", 0);
    available[name] = event.object.value("/status/availableReplicas"_json_pointer, 0);
    int64_t wanted = 0;
    int64_t up = 0;
    for (const auto& [rs, replicas] : spec_replicas) wanted += replicas;
    for (const auto& [rs, count] : available) up += count;
    most_wanted = std::max(most_wanted, wanted);
    least_available = std::min(least_available, up);
  }
  EXPECT_EQ(most_wanted, 5);
  EXPECT_GE(least_available, 3);
}

TEST_F(ClusterTest, UndoPatchReusesReplicaSetWithNextRevision) {
  ASSERT_TRUE(ApplyRevision(*emulator_, "default", DeploymentSpec{}));
  ASSERT_TRUE(ApplyRevision(*emulator_, "default", DeploymentSpec{.images = {"example/web:v2"}}));
  json v1 = ReplicaSetWithImage("example/web:v1");

  ApiResult patched = PatchTemplateTo(v1);
  ASSERT_EQ(patched.status, 200) << patched.body.dump();
  ASSERT_TRUE(emulator_->WaitForRollout("default", "web", seconds(10)));

  EXPECT_EQ(ReplicaSets().size(), 2u) << "no new ReplicaSet may be created";
  json reused = ReplicaSetWithImage("example/web:v1");
  EXPECT_EQ(reused["metadata"]["name"], v1["metadata"]["name"]);
  EXPECT_EQ(Annotation(reused, "deployment.kubernetes.io/revision"), "3");
  EXPECT_EQ(Annotation(reused, "deployment.kubernetes.io/revision-history"), "1");
  EXPECT_EQ(reused["spec"]["replicas"], 3);
  EXPECT_EQ(ReplicaSetWithImage("example/web:v2")["spec"]["replicas"], 0);
  EXPECT_EQ(Annotation(Deployment(), "deployment.kubernetes.io/revision"), "3");
}

TEST_F(ClusterTest, RevisionHistoryAccumulatesAcrossUndos) {
  ASSERT_TRUE(ApplyRevision(*emulator_, "default", DeploymentSpec{}));
  ASSERT_TRUE(ApplyRevision(*emulator_, "default", DeploymentSpec{.images = {"example/web:v2"}}));
  for (int i = 0; i < 2; ++i) {
    json other = ReplicaSetWithImage(i == 0 ? "example/web:v1" : "example/web:v2");
    ASSERT_EQ(PatchTemplateTo(other).status, 200);
    ASSERT_TRUE(emulator_->WaitForRollout("default", "web", seconds(10)));
  }
  // v1: 1 -> 3; v2: 2 -> 4.
  EXPECT_EQ(Annotation(ReplicaSetWithImage("example/web:v2"), "deployment.kubernetes.io/revision"),
            "4");
  EXPECT_EQ(Annotation(ReplicaSetWithImage("example/web:v2"),
                       "deployment.kubernetes.io/revision-history"),
            "2");
}

TEST_F(ClusterTest, RevisionHistoryLimitDeletesOldestReplicaSets) {
  for (int version = 1; version <= 4; ++version) {
    DeploymentSpec spec{.images = {"example/web:v" + std::to_string(version)},
                        .revision_history_limit = 1};
    ASSERT_TRUE(ApplyRevision(*emulator_, "default", spec));
  }
  // Cleanup runs on the pass after the rollout completes.
  ASSERT_TRUE(WaitForReplicaSetCount(*emulator_, "default", "web", 2));
  std::vector<json> sets = ReplicaSets();
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_FALSE(ReplicaSetWithImage("example/web:v4").is_null());
  EXPECT_FALSE(ReplicaSetWithImage("example/web:v3").is_null());
}

TEST_F(ClusterTest, ZeroHistoryLimitKeepsOnlyCurrentReplicaSet) {
  ASSERT_TRUE(ApplyRevision(*emulator_, "default", DeploymentSpec{.revision_history_limit = 0}));
  ASSERT_TRUE(
      ApplyRevision(*emulator_, "default",
                    DeploymentSpec{.images = {"example/web:v2"}, .revision_history_limit = 0}));
  ASSERT_TRUE(WaitForReplicaSetCount(*emulator_, "default", "web", 1));
  ASSERT_EQ(ReplicaSets().size(), 1u);
  EXPECT_FALSE(ReplicaSetWithImage("example/web:v2").is_null());
}

TEST_F(ClusterTest, CrashingPodsReportCrashLoopBackOff) {
  emulator_->cluster().SetPodBehaviour("example/web:bad", PodBehaviour{PodFault::kCrashLoop, {}});
  ASSERT_TRUE(ApplyRevision(*emulator_, "default", DeploymentSpec{}));
  emulator_->cluster().Apply("default", DeploymentManifest({.images = {"example/web:bad"}}));
  std::this_thread::sleep_for(milliseconds(800));

  bool crashing = false;
  for (const json& pod : Pods()) {
    const json& status = pod["status"]["containerStatuses"][0];
    if (status["image"] != "example/web:bad") continue;
    EXPECT_EQ(status["state"]["waiting"]["reason"], "CrashLoopBackOff");
    EXPECT_GE(status["restartCount"].get<int>(), 1);
    EXPECT_FALSE(status["ready"].get<bool>());
    crashing = true;
  }
  EXPECT_TRUE(crashing);
  // The old pods stay while the new ones are not available.
  EXPECT_GE(Deployment()["status"]["availableReplicas"].get<int>(), 2);
}

TEST_F(ClusterTest, ImagePullFailureReportsWaitingReasons) {
  emulator_->cluster().SetPodBehaviour("example/web:missing",
                                       PodBehaviour{PodFault::kImagePull, {}});
  emulator_->cluster().Apply(
      "default", DeploymentManifest({.images = {"example/web:missing"}, .replicas = 1}));
  std::set<std::string> reasons;
  for (int i = 0;
       i < 40 && !(reasons.contains("ErrImagePull") && reasons.contains("ImagePullBackOff")); ++i) {
    for (const json& pod : Pods()) {
      if (pod["status"].contains("containerStatuses")) {
        reasons.insert(
            pod["status"]["containerStatuses"][0]["state"]["waiting"].value("reason", ""));
      }
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(reasons.contains("ErrImagePull"));
  EXPECT_TRUE(reasons.contains("ImagePullBackOff"));
}

TEST_F(ClusterTest, StalledRolloutExceedsProgressDeadline) {
  emulator_->cluster().SetPodBehaviour("example/web:missing",
                                       PodBehaviour{PodFault::kImagePull, {}});
  ASSERT_TRUE(ApplyRevision(*emulator_, "default", DeploymentSpec{.progress_deadline_seconds = 1}));
  emulator_->cluster().Apply("default", DeploymentManifest({.images = {"example/web:missing"},
                                                            .progress_deadline_seconds = 1}));
  json condition;
  for (int i = 0; i < 80; ++i) {
    condition = Condition(Deployment(), "Progressing");
    if (condition["reason"] == "ProgressDeadlineExceeded") break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(condition["reason"], "ProgressDeadlineExceeded");
  EXPECT_EQ(condition["status"], "False");
}

TEST_F(ClusterTest, PausedDeploymentDoesNotRollOut) {
  ASSERT_TRUE(ApplyRevision(*emulator_, "default", DeploymentSpec{}));
  ASSERT_EQ(emulator_->cluster()
                .Patch(Resource::kDeployments, "default", "web", PatchType::kStrategicMerge,
                       R"({"spec":{"paused":true}})", false)
                .status,
            200);
  emulator_->cluster().Apply("default", DeploymentManifest({.images = {"example/web:v2"}}));
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(ReplicaSets().size(), 1u);
  EXPECT_EQ(Condition(Deployment(), "Progressing")["reason"], "DeploymentPaused");
  EXPECT_EQ(Condition(Deployment(), "Progressing")["status"], "Unknown");
}

TEST_F(ClusterTest, JsonPatchTestFailureIsRejected) {
  ASSERT_TRUE(ApplyRevision(*emulator_, "default", DeploymentSpec{}));
  ApiResult result =
      emulator_->cluster().Patch(Resource::kDeployments, "default", "web", PatchType::kJson,
                                 R"([{"op":"test","path":"/spec/replicas","value":7}])", false);
  EXPECT_EQ(result.status, 422);
  EXPECT_EQ(result.body["kind"], "Status");
}

TEST_F(ClusterTest, SelectorChangeIsRejected) {
  ASSERT_TRUE(ApplyRevision(*emulator_, "default", DeploymentSpec{}));
  ApiResult result = emulator_->cluster().Patch(
      Resource::kDeployments, "default", "web", PatchType::kMerge,
      R"({"spec":{"selector":{"matchLabels":{"app":"web","tier":"x"}},"template":{"metadata":{"labels":{"tier":"x"}}}}})",
      false);
  EXPECT_EQ(result.status, 422);
}

TEST_F(ClusterTest, DryRunPatchChangesNothing) {
  ASSERT_TRUE(ApplyRevision(*emulator_, "default", DeploymentSpec{}));
  json before = Deployment();
  ApiResult result =
      emulator_->cluster().Patch(Resource::kDeployments, "default", "web", PatchType::kMerge,
                                 R"({"spec":{"replicas":5}})", true);
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body["spec"]["replicas"], 5);
  EXPECT_EQ(Deployment()["spec"]["replicas"], before["spec"]["replicas"]);
}

TEST_F(ClusterTest, SnapshotRestoresSameObjects) {
  ASSERT_TRUE(ApplyRevision(*emulator_, "default", DeploymentSpec{}));
  emulator_->SetControllersRunning(false);
  json snapshot = emulator_->cluster().Snapshot();
  ASSERT_TRUE(ApplyRevision(*emulator_, "default", DeploymentSpec{.images = {"example/web:v2"}},
                            false, milliseconds(100)) == false);
  emulator_->cluster().Restore(snapshot);
  EXPECT_EQ(emulator_->cluster().Snapshot()["deployments"], snapshot["deployments"]);
  EXPECT_EQ(emulator_->cluster().Snapshot()["replicasets"], snapshot["replicasets"]);
}

TEST_F(ClusterTest, WatchLogReturnsEventsAfterVersion) {
  uint64_t start = emulator_->cluster().ResourceVersion();
  ASSERT_TRUE(ApplyRevision(*emulator_, "default", DeploymentSpec{}));
  auto events = emulator_->cluster().EventsAfter(Resource::kDeployments, start);
  ASSERT_TRUE(events.has_value());
  ASSERT_FALSE(events->empty());
  EXPECT_EQ(events->front().type, "ADDED");
  EXPECT_GT(events->front().resource_version, start);
  EXPECT_EQ(events->front().object["kind"], "Deployment");
}

TEST_F(ClusterTest, CompactedWatchVersionIsGone) {
  auto started = Emulator::Start([] {
    EmulatorOptions options = FastEmulatorOptions();
    options.cluster.event_log_size = 5;
    return options;
  }());
  ASSERT_TRUE(started.has_value());
  Emulator& small = **started;
  ASSERT_TRUE(ApplyRevision(small, "default", DeploymentSpec{}));
  EXPECT_FALSE(small.cluster().EventsAfter(Resource::kDeployments, 1).has_value());
}

TEST(SelectorTest, ParsesEqualityAndSetTerms) {
  auto selector = LabelSelector::Parse("app=web,tier!=db,env in (prod, staging),!legacy,team");
  ASSERT_TRUE(selector.has_value());
  EXPECT_TRUE(selector->Matches({{"app", "web"}, {"env", "prod"}, {"team", "a"}}));
  EXPECT_FALSE(selector->Matches({{"app", "web"}, {"env", "dev"}, {"team", "a"}}));
  EXPECT_FALSE(
      selector->Matches({{"app", "web"}, {"env", "prod"}, {"team", "a"}, {"legacy", "1"}}));
  EXPECT_FALSE(selector->Matches({{"app", "web"}, {"env", "prod"}, {"team", "a"}, {"tier", "db"}}));
  EXPECT_FALSE(selector->Matches({{"app", "web"}, {"env", "prod"}}));
}

TEST(SelectorTest, FieldSelectorMatchesName) {
  auto selector = FieldSelector::Parse("metadata.name=web");
  ASSERT_TRUE(selector.has_value());
  EXPECT_TRUE(selector->Matches({{"metadata", {{"name", "web"}}}}));
  EXPECT_FALSE(selector->Matches({{"metadata", {{"name", "api"}}}}));
  EXPECT_FALSE(FieldSelector::Parse("spec.replicas=3").has_value());
}

TEST(TemplateTest, EqualityIgnoresHashLabelAndEmptyFields) {
  json a = {{"metadata", {{"labels", {{"app", "web"}, {"pod-template-hash", "abc"}}}}},
            {"spec",
             {{"containers", {{{"name", "app"}, {"image", "x"}, {"resources", json::object()}}}}}}};
  json b = {{"metadata", {{"labels", {{"app", "web"}}}, {"creationTimestamp", nullptr}}},
            {"spec", {{"containers", {{{"name", "app"}, {"image", "x"}}}}}}};
  EXPECT_TRUE(EqualIgnoreHash(a, b));
  b["spec"]["containers"][0]["image"] = "y";
  EXPECT_FALSE(EqualIgnoreHash(a, b));
}

}  // namespace
}  // namespace backout::emulators::kubernetes
