#pragma once

#include <chrono>
#include <condition_variable>
#include <expected>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api_server.h"
#include "cluster.h"
#include "tls.h"

// A Kubernetes API emulator for tests: an in-memory cluster, its controllers on a thread, and an
// HTTPS API server on 127.0.0.1 that kubectl itself can drive.
namespace backout::emulators::kubernetes {

struct EmulatorOptions {
  int port = 0;  // 0 lets the kernel choose
  std::string token = "emulator-token";
  std::string client_common_name = "emulator-client";
  std::chrono::milliseconds tick{50};  // time between two controller passes
  bool run_controllers = true;
  std::string minor_version = "32";
  ClusterOptions cluster;
};

enum class KubeconfigAuth {
  kToken,              // users[].user.token
  kTokenFile,          // users[].user.tokenFile, written beside the kubeconfig
  kClientCertificate,  // client-certificate-data and client-key-data
};

struct KubeconfigOptions {
  KubeconfigAuth auth = KubeconfigAuth::kToken;
  std::string ns = "default";
  bool insecure_skip_tls_verify = false;  // instead of certificate-authority-data
  std::string context = "emulator";
};

class Emulator {
 public:
  // Starts the controllers and the server. Fails with a message when the port or TLS fails.
  static std::expected<std::unique_ptr<Emulator>, std::string> Start(EmulatorOptions options = {});
  ~Emulator();
  Emulator(const Emulator&) = delete;
  Emulator& operator=(const Emulator&) = delete;

  Cluster& cluster() { return cluster_; }
  int port() const { return server_->port(); }
  std::string server_url() const;
  const TlsMaterial& tls() const { return tls_; }
  const std::string& token() const { return options_.token; }

  // Pauses or resumes the controller thread, so a test can hold the state still.
  void SetControllersRunning(bool running);

  // Writes a kubeconfig for this emulator. Returns false when the file cannot be written.
  bool WriteKubeconfig(const std::filesystem::path& path,
                       const KubeconfigOptions& options = {}) const;

  std::vector<RecordedRequest> Requests() const { return server_->Requests(); }
  void ClearRequests() { server_->ClearRequests(); }

  // Waits until the Deployment's status passes kubectl's rollout-status rules. Returns false on
  // timeout.
  bool WaitForRollout(const std::string& ns, const std::string& name,
                      std::chrono::milliseconds timeout);

 private:
  explicit Emulator(EmulatorOptions options);
  void RunControllers();

  EmulatorOptions options_;
  TlsMaterial tls_;
  Cluster cluster_;
  std::unique_ptr<ApiServer> server_;
  std::thread controllers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool running_ = true;
  bool stopping_ = false;
};

// Whether a Deployment's status passes `kubectl rollout status` (observedGeneration, updated,
// old and available replicas, and no ProgressDeadlineExceeded).
bool RolloutComplete(const nlohmann::json& deployment);

}  // namespace backout::emulators::kubernetes
