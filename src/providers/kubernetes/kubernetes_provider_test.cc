// Tests of the Kubernetes provider against the emulator, side by side with the real kubectl
// where kubectl does the same thing.

#include "providers/kubernetes/kubernetes_provider.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <thread>

#include "emulator.h"
#include "fixtures.h"
#include "kubectl.h"
#include "providers/registry.h"
#include "support/temp_dir.h"

namespace backout::providers::kubernetes {
namespace {

namespace emu = backout::emulators::kubernetes;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

class WallClock final : public core::Clock {
 public:
  core::Time Now() const override {
    return std::chrono::time_point_cast<core::Duration>(std::chrono::system_clock::now());
  }
};

class KubernetesProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = emu::Emulator::Start(emu::FastEmulatorOptions());
    ASSERT_TRUE(started.has_value()) << started.error();
    emulator_ = std::move(*started);
    kubeconfig_ = dir_.path() / "kubeconfig";
    ASSERT_TRUE(emulator_->WriteKubeconfig(kubeconfig_));
  }

  json Settings(const json& extra = json::object()) {
    json settings{{"kind", "kubernetes"},     {"kubeconfig", kubeconfig_.string()},
                  {"deployment", "web"},      {"soak", "0s"},
                  {"poll_interval", "100ms"}, {"readiness_timeout", "20s"}};
    for (const auto& [key, value] : extra.items()) settings[key] = value;
    return settings;
  }

  std::unique_ptr<Provider> MakeProvider(const json& extra = json::object()) {
    auto provider = Registry::Create("kubernetes", "web", Settings(extra), {}, clock_);
    EXPECT_TRUE(provider.has_value()) << provider.error().message;
    return provider ? std::move(*provider) : nullptr;
  }

  static const KubernetesProvider& Kube(const Provider& provider) {
    return static_cast<const KubernetesProvider&>(provider);
  }

  void ApplyVersions(int count, emu::DeploymentSpec spec = {}, const std::string& ns = "default") {
    for (int version = 1; version <= count; ++version) {
      spec.images = {"example/web:v" + std::to_string(version)};
      ASSERT_TRUE(emu::ApplyRevision(*emulator_, ns, spec)) << "version " << version;
    }
  }

  ExecutionResult Execute(const Provider& provider, const Plan& plan) {
    ExecutionContext context;
    context.incident_id = "INC-7";
    context.executor = "alice";
    auto result = provider.Execute(plan, "job-1", context);
    EXPECT_TRUE(result.has_value()) << result.error().message;
    return result ? *result : ExecutionResult{};
  }

  std::vector<emu::RecordedRequest> Patches() {
    std::vector<emu::RecordedRequest> patches;
    for (const emu::RecordedRequest& request : emulator_->Requests()) {
      if (request.method == "PATCH") patches.push_back(request);
    }
    return patches;
  }

  json Deployment(const std::string& ns = "default") {
    return emulator_->cluster().Get(emu::Resource::kDeployments, ns, "web").body;
  }

  std::string Image(const std::string& ns = "default") {
    return Deployment(ns)["spec"]["template"]["spec"]["containers"][0]["image"];
  }

  emu::KubectlResult Kubectl(const std::vector<std::string>& args) {
    return emu::RunKubectl(kubeconfig_, dir_.path(), args);
  }

  static const Precondition* Find(const std::vector<Precondition>& checks,
                                  const std::string& name) {
    for (const Precondition& check : checks) {
      if (check.name == name) return &check;
    }
    return nullptr;
  }

  // Runs `kubectl rollout undo ARGS` and then Backout's plan and execute for `target` on the
  // same state, and returns both patches.
  std::pair<json, json> CompareWithKubectl(const std::vector<std::string>& kubectl_args,
                                           std::string_view target) {
    emulator_->SetControllersRunning(false);
    json snapshot = emulator_->cluster().Snapshot();

    emulator_->ClearRequests();
    std::vector<std::string> args = {"rollout", "undo", "deployment/web"};
    args.insert(args.end(), kubectl_args.begin(), kubectl_args.end());
    emu::KubectlResult undo = Kubectl(args);
    EXPECT_EQ(undo.exit_code, 0) << undo.err;
    std::vector<emu::RecordedRequest> kubectl_patches = Patches();
    json kubectl_deployment = Deployment();

    emulator_->cluster().Restore(snapshot);
    emulator_->ClearRequests();
    auto provider = MakeProvider();
    auto plan = provider->MakePlan(target);
    EXPECT_TRUE(plan.has_value()) << plan.error().message;
    if (!plan) return {};
    ExecutionResult result = Execute(*provider, *plan);
    EXPECT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
    std::vector<emu::RecordedRequest> backout_patches = Patches();
    json backout_deployment = Deployment();

    EXPECT_EQ(kubectl_patches.size(), 1u);
    EXPECT_EQ(backout_patches.size(), 1u);
    if (kubectl_patches.size() != 1 || backout_patches.size() != 1) return {};
    EXPECT_EQ(kubectl_patches[0].content_type, backout_patches[0].content_type);
    EXPECT_EQ(kubectl_deployment["spec"]["template"], backout_deployment["spec"]["template"]);
    EXPECT_EQ(kubectl_deployment["metadata"]["annotations"],
              backout_deployment["metadata"]["annotations"]);
    emulator_->SetControllersRunning(true);
    return {json::parse(kubectl_patches[0].body), json::parse(backout_patches[0].body)};
  }

  WallClock clock_;
  testing::TempDir dir_;
  std::filesystem::path kubeconfig_;
  std::unique_ptr<emu::Emulator> emulator_;
};

// ---- Same choices and patches as kubectl --------------------------------------------------------

TEST_F(KubernetesProviderTest, DefaultUndoMatchesKubectl) {
  ApplyVersions(3, {.change_cause = "deploy", .extra_annotations = {{"team", "shop"}}});
  auto [kubectl_patch, backout_patch] = CompareWithKubectl({}, "");
  EXPECT_EQ(kubectl_patch, backout_patch);
  EXPECT_EQ(backout_patch[0]["value"]["spec"]["containers"][0]["image"], "example/web:v2");
}

TEST_F(KubernetesProviderTest, ToRevisionMatchesKubectl) {
  ApplyVersions(3);
  auto [kubectl_patch, backout_patch] = CompareWithKubectl({"--to-revision=1"}, "revision:1");
  EXPECT_EQ(kubectl_patch, backout_patch);
  EXPECT_EQ(backout_patch[0]["value"]["spec"]["containers"][0]["image"], "example/web:v1");
}

TEST_F(KubernetesProviderTest, LastAppliedAnnotationPatchMatchesKubectl) {
  ApplyVersions(1);
  ASSERT_TRUE(emu::ApplyRevision(*emulator_, "default", {.images = {"example/web:v2"}}, true));
  auto [kubectl_patch, backout_patch] = CompareWithKubectl({}, "example/web:v1");
  EXPECT_EQ(kubectl_patch, backout_patch);
  EXPECT_TRUE(
      backout_patch[1]["value"].contains("kubectl.kubernetes.io/last-applied-configuration"));
}

TEST_F(KubernetesProviderTest, PlanRecordsTargetAndRule) {
  ApplyVersions(2);
  auto provider = MakeProvider();
  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_EQ(plan->target_version, "example/web:v1");
  EXPECT_FALSE(plan->noop);
  EXPECT_THAT(plan->summary, HasSubstr("kubectl's rule"));
  EXPECT_EQ(plan->action["target"]["revision"], 1);
  EXPECT_FALSE(plan->action["target"]["pod_template_hash"].get<std::string>().empty());
  EXPECT_EQ(plan->action["target"]["images"], json({"example/web:v1"}));
  EXPECT_EQ(plan->action["from"]["version"], "example/web:v2");
  EXPECT_EQ(plan->digest, PlanDigest(plan->action));
}

TEST_F(KubernetesProviderTest, PlanningByTargetVersionKeepsDigest) {
  ApplyVersions(3);
  auto provider = MakeProvider();
  auto by_rule = provider->MakePlan("");
  ASSERT_TRUE(by_rule.has_value()) << by_rule.error().message;
  // The job plans again with the approved plan's target_version before it executes.
  auto again = provider->MakePlan(by_rule->target_version);
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(again->digest, by_rule->digest);
  EXPECT_EQ(again->target_version, "example/web:v2");
}

// ---- Section A cases ---------------------------------------------------------------------------

TEST_F(KubernetesProviderTest, SingleRevisionHasNoRollbackTarget) {
  ApplyVersions(1);
  auto provider = MakeProvider();
  auto plan = provider->MakePlan("");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().code, core::ErrorCode::kNotFound);
  EXPECT_THAT(plan.error().message, HasSubstr("no rollout history found for deployment \"web\""));
  EXPECT_THAT(plan.error().message, HasSubstr("only one revision"));
  auto checks = provider->Preconditions();
  ASSERT_TRUE(checks.has_value());
  const Precondition* retained = Find(*checks, "rollback target retained");
  ASSERT_NE(retained, nullptr);
  EXPECT_FALSE(retained->satisfied);
}

TEST_F(KubernetesProviderTest, ZeroHistoryLimitSaysHistoryWasPruned) {
  ApplyVersions(3, {.revision_history_limit = 0});
  ASSERT_TRUE(emu::WaitForReplicaSetCount(*emulator_, "default", "web", 1));
  auto plan = MakeProvider()->MakePlan("");
  ASSERT_FALSE(plan.has_value());
  EXPECT_THAT(plan.error().message, HasSubstr("revisionHistoryLimit is 0"));
}

TEST_F(KubernetesProviderTest, TargetPrunedAfterPlanEndsNoRollbackTarget) {
  ApplyVersions(2, {.revision_history_limit = 1});
  auto provider = MakeProvider();
  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  ASSERT_TRUE(emu::ApplyRevision(*emulator_, "default",
                                 {.images = {"example/web:v3"}, .revision_history_limit = 1}));
  ASSERT_TRUE(emu::WaitForReplicaSetCount(*emulator_, "default", "web", 2));
  emulator_->ClearRequests();
  ExecutionResult result = Execute(*provider, *plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kNoRollbackTarget) << result.message;
  EXPECT_TRUE(Patches().empty());
}

TEST_F(KubernetesProviderTest, PausedDeploymentIsRefusedWithResumeHint) {
  ApplyVersions(2, {}, "kube-system");
  ASSERT_EQ(emulator_->cluster()
                .Patch(emu::Resource::kDeployments, "kube-system", "web", emu::PatchType::kMerge,
                       R"({"spec":{"paused":true}})", false)
                .status,
            200);
  auto provider = MakeProvider({{"namespace", "kube-system"}});
  auto checks = provider->Preconditions();
  ASSERT_TRUE(checks.has_value());
  const Precondition* paused = Find(*checks, "deployment not paused");
  ASSERT_NE(paused, nullptr);
  EXPECT_FALSE(paused->satisfied);
  EXPECT_THAT(paused->detail, HasSubstr("kubectl rollout resume deployment/web -n kube-system"));

  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  emulator_->ClearRequests();
  ExecutionResult result = Execute(*provider, *plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kPreconditionFailed);
  EXPECT_THAT(result.message, HasSubstr("kubectl rollout resume deployment/web -n kube-system"));
  EXPECT_TRUE(Patches().empty());
  EXPECT_EQ(Image("kube-system"), "example/web:v2");
}

TEST_F(KubernetesProviderTest, CurrentTemplateIsSkippedNoop) {
  ApplyVersions(2);
  auto provider = MakeProvider();
  auto plan = provider->MakePlan("revision:2");
  ASSERT_TRUE(plan.has_value()) << plan.error().message;
  EXPECT_TRUE(plan->noop);
  EXPECT_THAT(plan->summary,
              HasSubstr("skipped rollback (current template already matches revision 2)"));
  emulator_->ClearRequests();
  ExecutionResult result = Execute(*provider, *plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kSkippedNoop);
  EXPECT_TRUE(Patches().empty());
}

TEST_F(KubernetesProviderTest, RepeatedUndoAlternatesAndIsWarned) {
  ApplyVersions(3);
  auto provider = MakeProvider();
  auto first = provider->MakePlan("");
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(Execute(*provider, *first).outcome, RollbackOutcome::kRolledBack);
  ASSERT_TRUE(emulator_->WaitForRollout("default", "web", seconds(10)));

  auto checks = provider->Preconditions();
  ASSERT_TRUE(checks.has_value());
  const Precondition* repeated = Find(*checks, "repeated undo");
  ASSERT_NE(repeated, nullptr);
  EXPECT_THAT(repeated->detail, HasSubstr("example/web:v3"));
  auto second = provider->MakePlan("");
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->target_version, "example/web:v3") << "kubectl's rule swaps back, not v1";
}

TEST_F(KubernetesProviderTest, RenumberedRevisionIsRecordedByReplicaSet) {
  ApplyVersions(4);
  auto provider = MakeProvider();
  auto plan = provider->MakePlan("revision:2");
  ASSERT_TRUE(plan.has_value());
  ExecutionResult result = Execute(*provider, *plan);
  ASSERT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;
  ASSERT_TRUE(emulator_->WaitForRollout("default", "web", seconds(10)));

  const json& target = result.details["target"];
  EXPECT_EQ(target["revision"], 2);
  EXPECT_EQ(target["images"], json({"example/web:v2"}));
  EXPECT_FALSE(target["replicaset"].get<std::string>().empty());

  // kubectl's history no longer shows revision 2: it is now 5.
  emu::KubectlResult history = Kubectl({"rollout", "history", "deployment/web"});
  EXPECT_EQ(history.out,
            "deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         <none>\n3         <none>\n"
            "4         <none>\n5         <none>\n\n");

  auto record = provider->ReadBack(result);
  ASSERT_TRUE(record.has_value()) << record.error().message;
  EXPECT_EQ(record->version, "example/web:v2");
  EXPECT_EQ(record->details["replicaset"]["replicaset"], target["replicaset"]);
  EXPECT_EQ(record->details["replicaset"]["revision"], 5);
  EXPECT_EQ(record->details["replicaset"]["revision_history"], json({2}));
  EXPECT_EQ(record->details["history_row"]["revision"], 5);
  EXPECT_TRUE(record->details["matches_target"].get<bool>());
}

TEST_F(KubernetesProviderTest, CrashingTargetFailsFastWhileKubectlWaits) {
  ApplyVersions(2);
  emulator_->cluster().SetPodBehaviour("example/web:v1", {emu::PodFault::kCrashLoop, {}});
  auto provider = MakeProvider({{"readiness_timeout", "60s"}, {"poll_interval", "200ms"}});
  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value());
  ExecutionResult result = Execute(*provider, *plan);
  ASSERT_EQ(result.outcome, RollbackOutcome::kRolledBack) << result.message;

  auto status = emu::KubectlProcess::Start(
      kubeconfig_, dir_.path(), {"rollout", "status", "deployment/web", "--timeout=60s"});
  ASSERT_TRUE(status.has_value());
  auto started = std::chrono::steady_clock::now();
  std::vector<std::string> progress;
  auto report = Kube(*provider).WaitForRollout(
      result, [&](const ReadinessReport& update) { progress.push_back(update.message); });
  auto elapsed = std::chrono::steady_clock::now() - started;

  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->verdict, Verdict::kFailed);
  EXPECT_EQ(report->reason, "CrashLoopBackOff");
  EXPECT_THAT(report->pod, ::testing::StartsWith("web-"));
  EXPECT_THAT(report->message, HasSubstr(report->pod));
  EXPECT_LT(elapsed, seconds(10));
  EXPECT_TRUE(status->Running()) << "kubectl rollout status should still be waiting";
  EXPECT_FALSE(progress.empty());

  // One readiness check says the same, so the rollback job stops waiting at once.
  auto readiness = provider->CheckReadiness();
  ASSERT_TRUE(readiness.has_value()) << readiness.error().message;
  EXPECT_FALSE(readiness->ready);
  EXPECT_TRUE(readiness->failed) << readiness->message;
}

TEST_F(KubernetesProviderTest, ImagePullAndConfigErrorsFailFast) {
  for (emu::PodFault fault : {emu::PodFault::kImagePull, emu::PodFault::kConfigError}) {
    ApplyVersions(2);
    emulator_->cluster().SetPodBehaviour("example/web:v1", {fault, {}});
    auto provider = MakeProvider();
    auto plan = provider->MakePlan("example/web:v1");
    ASSERT_TRUE(plan.has_value());
    ExecutionResult result = Execute(*provider, *plan);
    ASSERT_EQ(result.outcome, RollbackOutcome::kRolledBack);
    auto report = Kube(*provider).WaitForRollout(result);
    ASSERT_TRUE(report.has_value());
    EXPECT_EQ(report->verdict, Verdict::kFailed);
    if (fault == emu::PodFault::kImagePull) {
      EXPECT_THAT(report->reason, ::testing::AnyOf("ErrImagePull", "ImagePullBackOff"));
    } else {
      EXPECT_EQ(report->reason, "CreateContainerConfigError");
    }
    emulator_->cluster().SetPodBehaviour("example/web:v1", {emu::PodFault::kNone, {}});
  }
}

TEST_F(KubernetesProviderTest, ServerProgressDeadlineIsReportedAsServerLimit) {
  ApplyVersions(2, {.progress_deadline_seconds = 1});
  emulator_->cluster().SetPodBehaviour("example/web:v1", {emu::PodFault::kNone, seconds(30)});
  auto provider = MakeProvider({{"readiness_timeout", "20s"}});
  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value());
  ExecutionResult result = Execute(*provider, *plan);
  auto report = Kube(*provider).WaitForRollout(result);
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->verdict, Verdict::kFailed);
  EXPECT_EQ(report->reason, "ProgressDeadlineExceeded");
  EXPECT_THAT(report->message, HasSubstr("the server's limit (progressDeadlineSeconds=1)"));
}

TEST_F(KubernetesProviderTest, ClientDeadlineIsReportedAsBackoutLimit) {
  ApplyVersions(2);
  emulator_->cluster().SetPodBehaviour("example/web:v1", {emu::PodFault::kNone, seconds(30)});
  auto provider = MakeProvider({{"readiness_timeout", "1500ms"}});
  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value());
  ExecutionResult result = Execute(*provider, *plan);
  auto report = Kube(*provider).WaitForRollout(result);
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->verdict, Verdict::kFailed);
  EXPECT_EQ(report->reason, "Timeout");
  EXPECT_THAT(report->message, HasSubstr("Backout's readiness_timeout"));
}

TEST_F(KubernetesProviderTest, HealthyRollbackIsReadyAfterSoak) {
  ApplyVersions(2);
  auto provider = MakeProvider({{"soak", "500ms"}});
  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value());
  ExecutionResult result = Execute(*provider, *plan);
  std::vector<std::string> progress;
  auto report = Kube(*provider).WaitForRollout(
      result, [&](const ReadinessReport& update) { progress.push_back(update.message); });
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->verdict, Verdict::kReady) << report->message;
  EXPECT_THAT(report->message, HasSubstr("successfully rolled out"));
  bool soaked = false;
  for (const std::string& message : progress) {
    if (message.find("soaking") != std::string::npos) soaked = true;
  }
  EXPECT_TRUE(soaked);

  auto readiness = provider->CheckReadiness();
  ASSERT_TRUE(readiness.has_value());
  EXPECT_TRUE(readiness->ready) << readiness->message;
}

TEST_F(KubernetesProviderTest, UndoScopeWarningNamesConfig) {
  ApplyVersions(1, {.replicas = 5});
  ASSERT_TRUE(emu::ApplyRevision(
      *emulator_, "default",
      {.images = {"example/web:v2"},
       .replicas = 2,
       .env = {
           {{"name", "FLAGS"},
            {"valueFrom", {{"configMapKeyRef", {{"name", "web-config"}, {"key", "flags"}}}}}}}}));
  // The old template referred to the same ConfigMap, so the undo keeps its new contents.
  ASSERT_TRUE(emu::ApplyRevision(
      *emulator_, "default",
      {.images = {"example/web:v3"},
       .replicas = 2,
       .env = {
           {{"name", "FLAGS"},
            {"valueFrom", {{"configMapKeyRef", {{"name", "web-config"}, {"key", "flags"}}}}}}}}));
  auto checks = MakeProvider()->Preconditions();
  ASSERT_TRUE(checks.has_value());
  const Precondition* scope = Find(*checks, "undo scope");
  ASSERT_NE(scope, nullptr);
  EXPECT_TRUE(scope->satisfied);
  EXPECT_THAT(scope->detail, HasSubstr("the replica count (now 2)"));
  EXPECT_THAT(scope->detail, HasSubstr("the ConfigMaps web-config"));
}

TEST_F(KubernetesProviderTest, LastAppliedConfigurationIsWarned) {
  ApplyVersions(1);
  ASSERT_TRUE(emu::ApplyRevision(*emulator_, "default", {.images = {"example/web:v2"}}, true));
  auto checks = MakeProvider()->Preconditions();
  ASSERT_TRUE(checks.has_value());
  const Precondition* source = Find(*checks, "source of truth reverted");
  ASSERT_NE(source, nullptr);
  EXPECT_THAT(source->detail, HasSubstr("last-applied-configuration"));
}

TEST_F(KubernetesProviderTest, GitOpsOwnedDeploymentIsRefused) {
  ApplyVersions(2, {.extra_annotations = {
                        {"argocd.argoproj.io/tracking-id", "shop:apps/Deployment:default/web"}}});
  auto provider = MakeProvider();
  auto checks = provider->Preconditions();
  ASSERT_TRUE(checks.has_value());
  const Precondition* gitops = Find(*checks, "not managed by GitOps");
  ASSERT_NE(gitops, nullptr);
  EXPECT_FALSE(gitops->satisfied);
  EXPECT_THAT(gitops->detail, HasSubstr("Argo CD"));

  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value());
  emulator_->ClearRequests();
  ExecutionResult result = Execute(*provider, *plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kPreconditionFailed);
  EXPECT_TRUE(Patches().empty());
}

TEST_F(KubernetesProviderTest, GitOpsRevertIsReportedWhenAllowed) {
  emu::DeploymentSpec spec{.extra_labels = {{"kustomize.toolkit.fluxcd.io/name", "apps"}}};
  ApplyVersions(2, spec);
  auto provider = MakeProvider({{"gitops", "allow"}, {"gitops_grace", "1s"}});
  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value());

  // A self-healing controller puts v2 back shortly after the undo.
  std::jthread controller([&](std::stop_token stop) {
    while (!stop.stop_requested() && Image() != "example/web:v1") {
      std::this_thread::sleep_for(milliseconds(20));
    }
    spec.images = {"example/web:v2"};
    emulator_->cluster().Apply("default", emu::DeploymentManifest(spec));
  });
  ExecutionResult result = Execute(*provider, *plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kRevertedByController) << result.message;
  EXPECT_EQ(result.live_version, "example/web:v2");
}

TEST_F(KubernetesProviderTest, LiveStateMovedSincePlanIsPreconditionFailed) {
  ApplyVersions(2);
  auto provider = MakeProvider();
  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value());
  ASSERT_TRUE(emu::ApplyRevision(*emulator_, "default", {.images = {"example/web:v3"}}));
  emulator_->ClearRequests();
  ExecutionResult result = Execute(*provider, *plan);
  EXPECT_EQ(result.outcome, RollbackOutcome::kPreconditionFailed) << result.message;
  EXPECT_THAT(result.message, HasSubstr("plan again"));
  EXPECT_TRUE(Patches().empty());
}

TEST_F(KubernetesProviderTest, UnrecordedStartSendsNothing) {
  ApplyVersions(2);
  auto provider = MakeProvider();
  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value());
  ExecutionContext context;
  context.on_started = [](const StartedAction&) -> core::Result<void> {
    return core::MakeError(core::ErrorCode::kUnavailable, "database is down");
  };
  emulator_->ClearRequests();
  auto result = provider->Execute(*plan, "job-1", context);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->outcome, RollbackOutcome::kFailed);
  EXPECT_TRUE(Patches().empty());
}

TEST_F(KubernetesProviderTest, AlteredPlanIsRejected) {
  ApplyVersions(2);
  auto provider = MakeProvider();
  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value());
  plan->action["patch"][0]["value"]["spec"]["containers"][0]["image"] = "evil/image:1";
  auto result = provider->Execute(*plan, "job-1", ExecutionContext{});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, core::ErrorCode::kInvalidArgument);
}

TEST_F(KubernetesProviderTest, ResumeTellsWhetherPatchLanded) {
  ApplyVersions(2);
  auto provider = MakeProvider();
  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value());
  StartedAction started{clock_.Now(), std::nullopt, json::object()};

  // The start was recorded but the patch never went out.
  auto not_landed = provider->Resume(ResumeRequest{*plan, "job-1", started}, ExecutionContext{});
  ASSERT_TRUE(not_landed.has_value());
  EXPECT_EQ(not_landed->outcome, RollbackOutcome::kFailed);
  EXPECT_THAT(not_landed->message, HasSubstr("did not land"));

  auto never = provider->Resume(ResumeRequest{*plan, "job-1", std::nullopt}, ExecutionContext{});
  ASSERT_TRUE(never.has_value());
  EXPECT_EQ(never->outcome, RollbackOutcome::kFailed);

  ASSERT_EQ(Execute(*provider, *plan).outcome, RollbackOutcome::kRolledBack);
  auto landed = provider->Resume(ResumeRequest{*plan, "job-1", started}, ExecutionContext{});
  ASSERT_TRUE(landed.has_value());
  EXPECT_EQ(landed->outcome, RollbackOutcome::kRolledBack);
}

TEST_F(KubernetesProviderTest, KubectlUndoIsDiscoveredInHistory) {
  ApplyVersions(2);
  core::Time before = clock_.Now() - seconds(5);
  ASSERT_EQ(Kubectl({"rollout", "undo", "deployment/web"}).exit_code, 0);
  ASSERT_TRUE(emulator_->WaitForRollout("default", "web", seconds(10)));
  auto history = MakeProvider()->History(before);
  ASSERT_TRUE(history.has_value()) << history.error().message;
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[0].kind, HistoryKind::kDeploy);
  EXPECT_EQ((*history)[0].version, "example/web:v1");
  EXPECT_EQ((*history)[2].kind, HistoryKind::kRollback);
  EXPECT_EQ((*history)[2].version, "example/web:v1");
  EXPECT_EQ((*history)[2].details["revision_at_event"], 3);
  EXPECT_TRUE((*history)[2].details["time_estimated"].get<bool>());
}

TEST_F(KubernetesProviderTest, LiveStateReportsTemplateVersion) {
  ApplyVersions(2);
  auto live = MakeProvider()->ReadLiveState();
  ASSERT_TRUE(live.has_value()) << live.error().message;
  EXPECT_EQ(live->version, "example/web:v2");
  EXPECT_EQ(live->details["revision"], "2");
  EXPECT_EQ(live->details["replicaset"]["revision"], 2);
}

TEST_F(KubernetesProviderTest, MissingDeploymentIsNotFound) {
  auto live = MakeProvider()->ReadLiveState();
  ASSERT_FALSE(live.has_value());
  EXPECT_EQ(live.error().code, core::ErrorCode::kNotFound);
  EXPECT_THAT(live.error().message, HasSubstr("deployment \"web\" not found in namespace default"));
}

// ---- Credentials -------------------------------------------------------------------------------

TEST_F(KubernetesProviderTest, TokenNeverReachesTranscript) {
  ApplyVersions(2);
  auto provider = MakeProvider({{"impersonate", "executor"}});
  auto plan = provider->MakePlan("");
  ASSERT_TRUE(plan.has_value());
  ExecutionResult result = Execute(*provider, *plan);
  ASSERT_EQ(result.outcome, RollbackOutcome::kRolledBack);
  std::string transcript = ToJson(result.transcript).dump();
  EXPECT_EQ(transcript.find(emulator_->token()), std::string::npos);
  EXPECT_THAT(transcript, HasSubstr("PATCH"));
  ASSERT_EQ(Patches().size(), 1u);
  EXPECT_EQ(Patches()[0].impersonate_user, "alice");
}

TEST_F(KubernetesProviderTest, OtherCredentialKindsAuthenticate) {
  ApplyVersions(1);
  for (emu::KubeconfigAuth auth :
       {emu::KubeconfigAuth::kTokenFile, emu::KubeconfigAuth::kClientCertificate}) {
    std::filesystem::path path = dir_.path() / ("config-" + std::to_string(static_cast<int>(auth)));
    ASSERT_TRUE(emulator_->WriteKubeconfig(path, {.auth = auth}));
    auto live = MakeProvider({{"kubeconfig", path.string()}})->ReadLiveState();
    EXPECT_TRUE(live.has_value()) << live.error().message;
  }
}

TEST_F(KubernetesProviderTest, ExecPluginCredentialAuthenticates) {
  ApplyVersions(1);
  std::filesystem::path plugin = dir_.path() / "plugin.sh";
  std::ofstream(plugin) << "#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
                           "\"kind\":\"ExecCredential\",\"status\":{\"token\":\""
                        << emulator_->token() << "\"}}'\n";
  ::chmod(plugin.c_str(), 0755);
  std::string config;
  {
    std::ifstream in(kubeconfig_);
    config.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::string token_line = "    token: " + emulator_->token() + "\n";
  config.replace(config.find(token_line), token_line.size(),
                 "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: " +
                     plugin.string() + "\n");
  std::filesystem::path path = dir_.path() / "exec-config";
  std::ofstream(path) << config;
  auto live = MakeProvider({{"kubeconfig", path.string()}})->ReadLiveState();
  EXPECT_TRUE(live.has_value()) << live.error().message;
}

TEST_F(KubernetesProviderTest, WrongTokenIsUnauthenticated) {
  ApplyVersions(1);
  std::string config;
  {
    std::ifstream in(kubeconfig_);
    config.assign(std::istreambuf_iterator<char>(in), {});
  }
  config.replace(config.find(emulator_->token()), emulator_->token().size(), "wrong-token");
  std::filesystem::path path = dir_.path() / "wrong-config";
  std::ofstream(path) << config;
  auto live = MakeProvider({{"kubeconfig", path.string()}})->ReadLiveState();
  ASSERT_FALSE(live.has_value());
  EXPECT_EQ(live.error().code, core::ErrorCode::kUnauthenticated);
  EXPECT_EQ(live.error().message.find("wrong-token"), std::string::npos);
}

TEST(KubernetesSettingsTest, RejectsWorkloadsOtherThanDeployments) {
  auto parsed =
      ParseKubernetesSettings("web", {{"kubeconfig", "/etc/kubeconfig"}, {"statefulset", "db"}});
  ASSERT_FALSE(parsed.has_value());
  EXPECT_THAT(parsed.error().message,
              HasSubstr("StatefulSets and DaemonSets are not supported yet"));
}

TEST(KubernetesSettingsTest, ReadsDefaultsAndChoices) {
  auto parsed = ParseKubernetesSettings(
      "web", {{"kubeconfig", "/etc/kubeconfig"}, {"deployment", "web"}, {"gitops", "allow"}});
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->gitops, GitOpsPolicy::kAllow);
  EXPECT_EQ(parsed->readiness_timeout, milliseconds(600'000));
  EXPECT_FALSE(
      ParseKubernetesSettings(
          "web", {{"kubeconfig", "/etc/kubeconfig"}, {"deployment", "web"}, {"gitops", "maybe"}})
          .has_value());
  EXPECT_FALSE(ParseKubernetesSettings("web", {{"kubeconfig", "relative"}, {"deployment", "web"}})
                   .has_value());
}

}  // namespace
}  // namespace backout::providers::kubernetes
