// Kubernetes rollback benchmark: Backout's plan + execute against `kubectl rollout undo`, both
// on the same emulator state (three revisions, controllers held still, the state restored
// before every run). kubectl is measured with a warm discovery cache, its everyday case, and
// with a cold one; the ratio uses the warm figure.
// Usage: kube_bench [--runs N]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "emulator.h"
#include "fixtures.h"
#include "kubectl.h"
#include "providers/kubernetes/kubernetes_provider.h"
#include "providers/registry.h"

namespace {

using namespace backout;
namespace emu = backout::emulators::kubernetes;
using Milliseconds = std::chrono::duration<double, std::milli>;

class WallClock final : public core::Clock {
 public:
  core::Time Now() const override {
    return std::chrono::time_point_cast<core::Duration>(std::chrono::system_clock::now());
  }
};

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "kube_bench: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // One log line per rollback would be measured too.
  spdlog::set_level(spdlog::level::warn);
  int runs = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--runs") runs = std::max(1, std::atoi(argv[i + 1]));
  }

  // One emulator with three revisions, held still so every run starts from the same state.
  auto started = emu::Emulator::Start(emu::FastEmulatorOptions());
  if (!started) return Fail(started.error());
  emu::Emulator& emulator = **started;
  for (int version = 1; version <= 3; ++version) {
    emu::DeploymentSpec spec;
    spec.images = {fmt::format("example/web:v{}", version)};
    if (!emu::ApplyRevision(emulator, "default", spec)) return Fail("seeding the emulator failed");
  }
  emulator.SetControllersRunning(false);
  nlohmann::json snapshot = emulator.cluster().Snapshot();

  std::filesystem::path work =
      std::filesystem::temp_directory_path() / fmt::format("kube-bench-{}", ::getpid());
  std::filesystem::create_directories(work);
  std::filesystem::path kubeconfig = work / "kubeconfig";
  if (!emulator.WriteKubeconfig(kubeconfig)) return Fail("writing the kubeconfig failed");
  std::string warm_cache = "--cache-dir=" + (work / "warm-cache").string();

  // kubectl, cold and warm discovery cache.
  std::vector<double> kubectl_cold;
  std::vector<double> kubectl_warm;
  for (int run = 0; run < runs; ++run) {
    for (bool warm : {false, true}) {
      emulator.cluster().Restore(snapshot);
      std::vector<std::string> args = {"rollout", "undo", "deployment/web"};
      if (warm) args.push_back(warm_cache);
      emu::KubectlResult result = emu::RunKubectl(kubeconfig, work, args);
      if (result.exit_code != 0) return Fail("kubectl rollout undo failed: " + result.err);
      (warm ? kubectl_warm : kubectl_cold).push_back(Milliseconds(result.duration).count());
    }
  }

  // Backout: one provider, as the server keeps it, planning and executing each run.
  WallClock clock;
  nlohmann::json settings{
      {"kind", "kubernetes"}, {"kubeconfig", kubeconfig.string()}, {"deployment", "web"}};
  auto provider = providers::Registry::Create("kubernetes", "web", settings, {}, clock);
  if (!provider) return Fail(provider.error().message);
  std::vector<double> backout;
  for (int run = 0; run < runs; ++run) {
    emulator.cluster().Restore(snapshot);
    auto begin = std::chrono::steady_clock::now();
    auto plan = (*provider)->MakePlan("");
    if (!plan) return Fail(plan.error().message);
    providers::ExecutionContext context;
    context.incident_id = "bench";
    context.executor = "bench";
    auto result = (*provider)->Execute(*plan, fmt::format("bench-{}", run), context);
    double elapsed = Milliseconds(std::chrono::steady_clock::now() - begin).count();
    if (!result || result->outcome != providers::RollbackOutcome::kRolledBack) {
      return Fail("Backout's rollback did not roll back: " +
                  (result ? result->message : result.error().message));
    }
    backout.push_back(elapsed);
  }
  std::filesystem::remove_all(work);

  double backout_ms = Median(backout);
  double warm_ms = Median(kubectl_warm);
  double cold_ms = Median(kubectl_cold);
  std::printf("kubernetes rollback, plan + execute, median of %d runs on the same emulator state\n",
              runs);
  std::printf("  backout (plan + execute):          %8.2f ms\n", backout_ms);
  std::printf("  kubectl rollout undo, warm cache:  %8.2f ms\n", warm_ms);
  std::printf("  kubectl rollout undo, cold cache:  %8.2f ms\n", cold_ms);
  std::printf("  ratio kubectl (warm) / backout:    %8.1fx  (target: above 1)\n",
              warm_ms / backout_ms);
  return 0;
}
