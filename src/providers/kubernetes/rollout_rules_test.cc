#include "providers/kubernetes/rollout_rules.h"

#include <gtest/gtest.h>

#include "providers/kubernetes/assessment.h"
#include "providers/kubernetes/readiness.h"

namespace backout::providers::kubernetes {
namespace {

using nlohmann::json;

json Template(const std::string& image, const std::string& hash = "") {
  json labels{{"app", "web"}};
  if (!hash.empty()) labels["pod-template-hash"] = hash;
  return json{
      {"metadata", {{"creationTimestamp", nullptr}, {"labels", labels}}},
      {"spec",
       {{"containers", {{{"name", "app"}, {"image", image}, {"resources", json::object()}}}}}}};
}

json Deployment(const std::string& image, const std::string& revision) {
  return json{{"metadata",
               {{"name", "web"},
                {"namespace", "shop"},
                {"uid", "d-1"},
                {"generation", 4},
                {"annotations", {{"deployment.kubernetes.io/revision", revision}}}}},
              {"spec",
               {{"replicas", 3},
                {"selector", {{"matchLabels", {{"app", "web"}}}}},
                {"template", Template(image)}}},
              {"status", {{"observedGeneration", 4}}}};
}

json ReplicaSet(const std::string& name, const std::string& image, const std::string& revision,
                const std::string& created, const std::string& owner = "d-1") {
  std::string hash = name.substr(name.find('-') + 1);
  json rs{{"metadata",
           {{"name", name},
            {"uid", "rs-" + name},
            {"creationTimestamp", created},
            {"labels", {{"app", "web"}, {"pod-template-hash", hash}}},
            {"annotations", {{"deployment.kubernetes.io/revision", revision}}},
            {"ownerReferences", {{{"uid", owner}, {"controller", true}}}}}},
          {"spec", {{"template", Template(image, hash)}}}};
  if (revision.empty()) rs["metadata"]["annotations"] = json::object();
  return rs;
}

std::vector<json> History() {
  json items = json::array({
      ReplicaSet("web-c", "example/web:v3", "3", "2026-01-03T00:00:00Z"),
      ReplicaSet("web-a", "example/web:v1", "1", "2026-01-01T00:00:00Z"),
      ReplicaSet("web-b", "example/web:v2", "2", "2026-01-02T00:00:00Z"),
      ReplicaSet("other-x", "example/other:v1", "9", "2026-01-01T00:00:00Z", "d-2"),
  });
  return OwnedReplicaSets(Deployment("example/web:v3", "3"), items);
}

TEST(RolloutRulesTest, OwnedReplicaSetsFiltersAndSortsByCreation) {
  std::vector<json> owned = History();
  ASSERT_EQ(owned.size(), 3u);
  EXPECT_EQ(owned[0]["metadata"]["name"], "web-a");
  EXPECT_EQ(owned[2]["metadata"]["name"], "web-c");
}

TEST(RolloutRulesTest, DefaultTargetIsSecondHighestRevision) {
  auto target = ChooseKubectlTarget(Deployment("example/web:v3", "3"), History(), 0);
  ASSERT_TRUE(target.has_value());
  EXPECT_EQ(target->replica_set["metadata"]["name"], "web-b");
  EXPECT_EQ(target->revision, 2);
  EXPECT_NE(target->rule.find("second-highest"), std::string::npos);
}

TEST(RolloutRulesTest, ToRevisionPicksThatRevision) {
  auto target = ChooseKubectlTarget(Deployment("example/web:v3", "3"), History(), 1);
  ASSERT_TRUE(target.has_value());
  EXPECT_EQ(target->replica_set["metadata"]["name"], "web-a");
}

TEST(RolloutRulesTest, MissingRevisionUsesKubectlMessage) {
  auto target = ChooseKubectlTarget(Deployment("example/web:v3", "3"), History(), 7);
  ASSERT_FALSE(target.has_value());
  EXPECT_EQ(target.error().kind, NoTarget::Kind::kRevisionNotFound);
  EXPECT_EQ(target.error().message, "unable to find specified revision 7 in history");
}

TEST(RolloutRulesTest, SingleRevisionHasNoHistory) {
  json d = Deployment("example/web:v1", "1");
  std::vector<json> owned = {ReplicaSet("web-a", "example/web:v1", "1", "2026-01-01T00:00:00Z")};
  auto target = ChooseKubectlTarget(d, owned, 0);
  ASSERT_FALSE(target.has_value());
  EXPECT_EQ(target.error().kind, NoTarget::Kind::kNoHistory);
  EXPECT_EQ(target.error().message, "no rollout history found for deployment \"web\"");
}

TEST(RolloutRulesTest, UnparsableRevisionIsSkipped) {
  std::vector<json> owned = History();
  owned[1]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "two";
  auto target = ChooseKubectlTarget(Deployment("example/web:v3", "3"), owned, 0);
  ASSERT_TRUE(target.has_value());
  EXPECT_EQ(target->replica_set["metadata"]["name"], "web-a");
}

TEST(RolloutRulesTest, NamedTargetsResolve) {
  json d = Deployment("example/web:v3", "3");
  std::vector<json> owned = History();
  EXPECT_EQ(MatchNamedTarget(d, owned, "example/web:v1")->replica_set["metadata"]["name"], "web-a");
  EXPECT_EQ(MatchNamedTarget(d, owned, "web-b")->replica_set["metadata"]["name"], "web-b");
  EXPECT_EQ(MatchNamedTarget(d, owned, "replicaset:web-b")->revision, 2);
  EXPECT_EQ(MatchNamedTarget(d, owned, "hash:a")->replica_set["metadata"]["name"], "web-a");
  EXPECT_EQ(MatchNamedTarget(d, owned, "revision:2")->replica_set["metadata"]["name"], "web-b");
  auto missing = MatchNamedTarget(d, owned, "example/web:v9");
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("example/web:v2"), std::string::npos)
      << "the message lists what exists";
  EXPECT_FALSE(MatchNamedTarget(d, owned, "revision:x").has_value());
}

TEST(RolloutRulesTest, SameImagesPickHighestRevisionWithNote) {
  json d = Deployment("example/web:v3", "3");
  std::vector<json> owned = History();
  json again = ReplicaSet("web-d", "example/web:v1", "4", "2026-01-04T00:00:00Z");
  again["spec"]["template"]["spec"]["containers"][0]["env"] = {{{"name", "A"}, {"value", "1"}}};
  owned.push_back(again);
  auto target = MatchNamedTarget(d, owned, "example/web:v1");
  ASSERT_TRUE(target.has_value());
  EXPECT_EQ(target->replica_set["metadata"]["name"], "web-d");
  ASSERT_EQ(target->notes.size(), 1u);
}

TEST(RolloutRulesTest, NewReplicaSetIgnoresHashLabel) {
  std::vector<json> owned = History();
  auto index = FindNewReplicaSet(Deployment("example/web:v2", "2"), owned);
  ASSERT_TRUE(index.has_value());
  EXPECT_EQ(owned[*index]["metadata"]["name"], "web-b");
}

TEST(RolloutRulesTest, UndoAnnotationsKeepControllerKeys) {
  json d = Deployment("example/web:v3", "3");
  d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}";
  d["metadata"]["annotations"]["team"] = "shop";
  json rs = History()[0];
  rs["metadata"]["annotations"]["kubernetes.io/change-cause"] = "deploy v1";
  rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] = "3";
  json annotations = UndoAnnotations(d, rs);
  EXPECT_EQ(annotations, json({{"deployment.kubernetes.io/revision", "3"},
                               {"kubectl.kubernetes.io/last-applied-configuration", "{}"},
                               {"kubernetes.io/change-cause", "deploy v1"}}));
}

TEST(RolloutRulesTest, UndoPatchReplacesTemplateWithoutHash) {
  json d = Deployment("example/web:v3", "3");
  json patch = UndoPatch(d, History()[0]);
  ASSERT_EQ(patch.size(), 2u);
  EXPECT_EQ(patch[0]["path"], "/spec/template");
  EXPECT_FALSE(patch[0]["value"]["metadata"]["labels"].contains("pod-template-hash"));
  EXPECT_EQ(patch[0]["value"]["spec"]["containers"][0]["image"], "example/web:v1");
  EXPECT_TRUE(patch[0]["value"]["metadata"]["creationTimestamp"].is_null());
  EXPECT_EQ(patch[1]["op"], "replace");
  EXPECT_EQ(patch[1]["path"], "/metadata/annotations");
}

TEST(RolloutRulesTest, SelectorQuerySortsRequirements) {
  json selector{{"matchLabels", {{"tier", "web"}, {"app", "shop"}}},
                {"matchExpressions",
                 {{{"key", "env"}, {"operator", "In"}, {"values", {"prod", "dev"}}},
                  {{"key", "legacy"}, {"operator", "DoesNotExist"}}}}};
  EXPECT_EQ(SelectorQuery(selector), "app=shop,env in (dev,prod),!legacy,tier=web");
}

TEST(RolloutRulesTest, VersionNamesContainersWhenSeveral) {
  json t = Template("example/web:v1");
  EXPECT_EQ(VersionOf(t), "example/web:v1");
  t["spec"]["containers"].push_back({{"name", "proxy"}, {"image", "envoy:1.30"}});
  EXPECT_EQ(VersionOf(t), "app=example/web:v1,proxy=envoy:1.30");
}

json StatusDeployment(int generation, int observed, int replicas, int updated, int total,
                      int available) {
  json d = Deployment("example/web:v1", "1");
  d["metadata"]["generation"] = generation;
  d["spec"]["replicas"] = replicas;
  d["status"] = {{"observedGeneration", observed},
                 {"updatedReplicas", updated},
                 {"replicas", total},
                 {"availableReplicas", available}};
  return d;
}

TEST(RolloutStatusTest, FollowsKubectlOrder) {
  EXPECT_EQ(DeploymentRolloutStatus(StatusDeployment(5, 4, 3, 3, 3, 3)).message,
            "Waiting for deployment spec update to be observed...");
  EXPECT_EQ(DeploymentRolloutStatus(StatusDeployment(5, 5, 3, 1, 4, 3)).message,
            "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been "
            "updated...");
  EXPECT_EQ(DeploymentRolloutStatus(StatusDeployment(5, 5, 3, 3, 4, 3)).message,
            "Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending "
            "termination...");
  EXPECT_EQ(DeploymentRolloutStatus(StatusDeployment(5, 5, 3, 3, 3, 2)).message,
            "Waiting for deployment \"web\" rollout to finish: 2 of 3 updated replicas are "
            "available...");
  RolloutStatus done = DeploymentRolloutStatus(StatusDeployment(5, 5, 3, 3, 3, 3));
  EXPECT_EQ(done.state, RolloutStatus::State::kDone);
  EXPECT_EQ(done.message, "deployment \"web\" successfully rolled out");
}

TEST(RolloutStatusTest, DeadlineConditionFails) {
  json d = StatusDeployment(5, 5, 3, 1, 4, 3);
  d["status"]["conditions"] = {
      {{"type", "Progressing"}, {"status", "False"}, {"reason", "ProgressDeadlineExceeded"}}};
  RolloutStatus status = DeploymentRolloutStatus(d);
  EXPECT_EQ(status.state, RolloutStatus::State::kFailed);
  EXPECT_EQ(status.message, "deployment \"web\" exceeded its progress deadline");
  EXPECT_EQ(DeploymentRolloutStatus(d, true).state, RolloutStatus::State::kWaiting);
}

// ---- Readiness ------------------------------------------------------------------------------

json Pod(const std::string& name, const std::string& rs_uid, const std::string& created,
         json container_status) {
  return json{{"metadata",
               {{"name", name},
                {"creationTimestamp", created},
                {"ownerReferences", {{{"uid", rs_uid}, {"controller", true}}}}}},
              {"status", {{"containerStatuses", {container_status}}}}};
}

ClusterView DoneView() {
  ClusterView view;
  view.deployment = StatusDeployment(5, 5, 1, 1, 1, 1);
  view.replica_sets = {ReplicaSet("web-a", "example/web:v1", "3", "2026-01-01T00:00:00Z")};
  view.pods = {Pod("web-a-1", "rs-web-a", "2026-01-05T00:00:10Z",
                   {{"name", "app"},
                    {"restartCount", 0},
                    {"state", {{"running", {{"startedAt", "2026-01-05T00:00:11Z"}}}}}})};
  return view;
}

core::Time At(const char* text) { return *core::ParseTime(text); }

TEST(ReadinessTest, CrashLoopFailsNamingPodAndReason) {
  ClusterView view = DoneView();
  view.deployment["status"]["availableReplicas"] = 0;
  view.pods[0]["status"]["containerStatuses"][0]["state"] = {
      {"waiting", {{"reason", "CrashLoopBackOff"}, {"message", "back-off 10s"}}}};
  ReadinessTracker tracker({}, At("2026-01-05T00:00:00Z"), std::nullopt);
  ReadinessReport report = tracker.Observe(view, At("2026-01-05T00:00:20Z"));
  EXPECT_EQ(report.verdict, Verdict::kFailed);
  EXPECT_EQ(report.pod, "web-a-1");
  EXPECT_EQ(report.reason, "CrashLoopBackOff");
}

TEST(ReadinessTest, RestartsSinceRollbackFailAtLimit) {
  ClusterView view = DoneView();
  view.deployment["status"]["availableReplicas"] = 0;
  view.pods[0]["status"]["containerStatuses"][0]["restartCount"] = 2;
  ReadinessTracker tracker(ReadinessRules{std::chrono::milliseconds(0), 2},
                           At("2026-01-05T00:00:00Z"), std::nullopt);
  ReadinessReport report = tracker.Observe(view, At("2026-01-05T00:00:20Z"));
  EXPECT_EQ(report.verdict, Verdict::kFailed);
  EXPECT_EQ(report.reason, "Restarted");
}

TEST(ReadinessTest, SoakMustPassWithoutRestart) {
  ClusterView view = DoneView();
  ReadinessTracker tracker(ReadinessRules{std::chrono::milliseconds(10'000), 3},
                           At("2026-01-05T00:00:00Z"), std::nullopt);
  EXPECT_EQ(tracker.Observe(view, At("2026-01-05T00:00:20Z")).verdict, Verdict::kWaiting);
  EXPECT_EQ(tracker.Observe(view, At("2026-01-05T00:00:25Z")).verdict, Verdict::kWaiting);
  EXPECT_EQ(tracker.Observe(view, At("2026-01-05T00:00:30Z")).verdict, Verdict::kReady);

  ReadinessTracker restarting(ReadinessRules{std::chrono::milliseconds(10'000), 3},
                              At("2026-01-05T00:00:00Z"), std::nullopt);
  EXPECT_EQ(restarting.Observe(view, At("2026-01-05T00:00:20Z")).verdict, Verdict::kWaiting);
  view.pods[0]["status"]["containerStatuses"][0]["restartCount"] = 1;
  ReadinessReport report = restarting.Observe(view, At("2026-01-05T00:00:25Z"));
  EXPECT_EQ(report.verdict, Verdict::kFailed);
  EXPECT_NE(report.message.find("during the soak"), std::string::npos);
}

TEST(ReadinessTest, DeadlineConditionFromBeforeRollbackIsNotEvidence) {
  ClusterView view = DoneView();
  view.deployment["status"]["conditions"] = {{{"type", "Progressing"},
                                              {"status", "False"},
                                              {"reason", "ProgressDeadlineExceeded"},
                                              {"lastUpdateTime", "2026-01-05T00:00:00Z"}}};
  ReadinessTracker stale(ReadinessRules{std::chrono::milliseconds(0), 3},
                         At("2026-01-05T00:00:00.400Z"), std::nullopt);
  EXPECT_EQ(stale.Observe(view, At("2026-01-05T00:00:20Z")).verdict, Verdict::kReady);

  view.deployment["status"]["conditions"][0]["lastUpdateTime"] = "2026-01-05T00:00:15Z";
  ReadinessTracker fresh(ReadinessRules{std::chrono::milliseconds(0), 3},
                         At("2026-01-05T00:00:00.400Z"), std::nullopt);
  ReadinessReport report = fresh.Observe(view, At("2026-01-05T00:00:20Z"));
  EXPECT_EQ(report.verdict, Verdict::kFailed);
  EXPECT_EQ(report.reason, "ProgressDeadlineExceeded");
}

TEST(ReadinessTest, ChangedTemplateFails) {
  ClusterView view = DoneView();
  ReadinessTracker tracker({}, At("2026-01-05T00:00:00Z"), Template("example/web:v0"));
  ReadinessReport report = tracker.Observe(view, At("2026-01-05T00:00:20Z"));
  EXPECT_EQ(report.verdict, Verdict::kFailed);
  EXPECT_EQ(report.reason, "TemplateChanged");
}

TEST(ReadinessTest, EvaluateOnceReadsSoakFromTimestamps) {
  ClusterView view = DoneView();
  view.pods[0]["status"]["conditions"] = {
      {{"type", "Ready"}, {"status", "True"}, {"lastTransitionTime", "2026-01-05T00:00:11Z"}}};
  ReadinessRules rules{std::chrono::milliseconds(30'000), 3};
  EXPECT_EQ(EvaluateOnce(view, rules, At("2026-01-05T00:00:20Z")).verdict, Verdict::kWaiting);
  EXPECT_EQ(EvaluateOnce(view, rules, At("2026-01-05T00:01:00Z")).verdict, Verdict::kReady);
}

// ---- Assessment -----------------------------------------------------------------------------

TEST(AssessmentTest, DetectsArgoAndFlux) {
  json d = Deployment("example/web:v1", "1");
  EXPECT_FALSE(DetectGitOpsOwner(d).has_value());
  d["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"] = "shop:apps/Deployment:shop/web";
  ASSERT_TRUE(DetectGitOpsOwner(d).has_value());
  EXPECT_EQ(DetectGitOpsOwner(d)->tool, "Argo CD");

  json flux = Deployment("example/web:v1", "1");
  flux["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] = "apps";
  EXPECT_EQ(DetectGitOpsOwner(flux)->tool, "Flux");

  json helm = Deployment("example/web:v1", "1");
  helm["metadata"]["labels"]["app.kubernetes.io/instance"] = "web";
  helm["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "Helm";
  EXPECT_FALSE(DetectGitOpsOwner(helm).has_value());
}

TEST(AssessmentTest, FindsReferencedConfigMapsAndSecrets) {
  json t = Template("example/web:v1");
  t["spec"]["volumes"] = {{{"name", "c"}, {"configMap", {{"name", "web-config"}}}},
                          {{"name", "s"}, {"secret", {{"secretName", "web-tls"}}}}};
  t["spec"]["containers"][0]["envFrom"] = {{{"secretRef", {{"name", "db-credentials"}}}}};
  t["spec"]["containers"][0]["env"] = {
      {{"name", "X"}, {"valueFrom", {{"configMapKeyRef", {{"name", "flags"}, {"key", "x"}}}}}}};
  ConfigReferences refs = ReferencedConfig(t);
  EXPECT_EQ(refs.config_maps, (std::vector<std::string>{"flags", "web-config"}));
  EXPECT_EQ(refs.secrets, (std::vector<std::string>{"db-credentials", "web-tls"}));
}

TEST(AssessmentTest, ResumeCommandNamesNamespace) {
  EXPECT_EQ(ResumeCommand("kube-system", "web"),
            "kubectl rollout resume deployment/web -n kube-system");
}

}  // namespace
}  // namespace backout::providers::kubernetes
