// kube_emulator: runs the Kubernetes API emulator until SIGINT or SIGTERM.
//
//   kube_emulator [--port N] [--kubeconfig PATH] [--token TEXT] [--tick-ms N]
//                 [--pod-start-ms N] [--apply FILE]...
//
// Prints "port N" on its first line once it serves. --apply reads a JSON Deployment manifest (or
// an array of them), applies each to namespace "default" (or its metadata.namespace) and waits
// for its rollout before the next, so each manifest becomes one revision.

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "emulator.h"

namespace kube = backout::emulators::kubernetes;
using nlohmann::json;

namespace {

int Usage(const char* message) {
  std::fprintf(stderr,
               "kube_emulator: %s\nusage: kube_emulator [--port N] [--kubeconfig PATH] "
               "[--token TEXT] [--tick-ms N] [--pod-start-ms N] [--apply FILE]...\n",
               message);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  kube::EmulatorOptions options;
  std::string kubeconfig;
  std::vector<std::string> apply_files;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) return Usage(("missing value after " + flag).c_str());
    std::string value = argv[++i];
    if (flag == "--port") {
      options.port = std::atoi(value.c_str());
    } else if (flag == "--kubeconfig") {
      kubeconfig = value;
    } else if (flag == "--token") {
      options.token = value;
    } else if (flag == "--tick-ms") {
      options.tick = std::chrono::milliseconds(std::atoi(value.c_str()));
    } else if (flag == "--pod-start-ms") {
      options.cluster.pod_start_delay = std::chrono::milliseconds(std::atoi(value.c_str()));
    } else if (flag == "--apply") {
      apply_files.push_back(value);
    } else {
      return Usage(("unknown flag " + flag).c_str());
    }
  }

  // Block the stop signals before any thread starts, so only sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto emulator = kube::Emulator::Start(options);
  if (!emulator) {
    std::fprintf(stderr, "kube_emulator: %s\n", emulator.error().c_str());
    return 1;
  }
  if (!kubeconfig.empty() && !(*emulator)->WriteKubeconfig(kubeconfig)) {
    std::fprintf(stderr, "kube_emulator: could not write the kubeconfig %s\n", kubeconfig.c_str());
    return 1;
  }

  for (const std::string& file : apply_files) {
    json manifests;
    try {
      std::ifstream input(file);
      manifests = json::parse(input);
    } catch (const json::exception& error) {
      std::fprintf(stderr, "kube_emulator: %s is not valid JSON: %s\n", file.c_str(), error.what());
      return 1;
    }
    if (!manifests.is_array()) manifests = json::array({manifests});
    for (const json& manifest : manifests) {
      std::string ns = manifest.value("/metadata/namespace"_json_pointer, std::string("default"));
      std::string name = manifest.value("/metadata/name"_json_pointer, std::string());
      kube::ApiResult result = (*emulator)->cluster().Apply(ns, manifest);
      if (result.status >= 300) {
        std::fprintf(stderr, "kube_emulator: applying %s failed: %s\n", file.c_str(),
                     result.body.value("message", "").c_str());
        return 1;
      }
      if (!(*emulator)->WaitForRollout(ns, name, std::chrono::seconds(60))) {
        std::fprintf(stderr, "kube_emulator: the rollout of %s/%s did not finish in 60s\n",
                     ns.c_str(), name.c_str());
        return 1;
      }
    }
  }

  std::cout << "port " << (*emulator)->port() << std::endl;
  int received = 0;
  sigwait(&signals, &received);
  return 0;
}
