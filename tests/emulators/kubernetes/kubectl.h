#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

// Runs the real kubectl against an emulator, each call with a fresh discovery cache so no call
// depends on an earlier one.
namespace backout::emulators::kubernetes {

struct KubectlResult {
  int exit_code = -1;  // -1 when it was killed or timed out
  bool timed_out = false;
  std::string out;
  std::string err;
  std::chrono::milliseconds duration{0};
};

// A kubectl process started in the background.
class KubectlProcess {
 public:
  // Starts `kubectl --kubeconfig KUBECONFIG --cache-dir FRESH args...` with output captured in
  // files under `work_dir`. Returns nullopt when the process cannot start.
  static std::optional<KubectlProcess> Start(const std::filesystem::path& kubeconfig,
                                             const std::filesystem::path& work_dir,
                                             const std::vector<std::string>& args);
  KubectlProcess(KubectlProcess&& other) noexcept;
  KubectlProcess& operator=(KubectlProcess&&) = delete;
  ~KubectlProcess();

  // Whether it still runs.
  bool Running();
  // Waits for it to end; after `timeout` kills it (SIGKILL) and marks the result timed out.
  KubectlResult Wait(std::chrono::milliseconds timeout);

 private:
  KubectlProcess() = default;

  pid_t pid_ = -1;
  std::optional<int> status_;
  std::filesystem::path out_path_;
  std::filesystem::path err_path_;
  std::chrono::steady_clock::time_point started_;
};

// Runs kubectl to the end (at most `timeout`).
KubectlResult RunKubectl(const std::filesystem::path& kubeconfig,
                         const std::filesystem::path& work_dir,
                         const std::vector<std::string>& args,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

// The kubectl this machine runs: $KUBECTL when set, else /usr/bin/kubectl.
std::string KubectlPath();

}  // namespace backout::emulators::kubernetes
