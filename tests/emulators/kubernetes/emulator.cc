#include "emulator.h"

#include <openssl/evp.h>

#include <fstream>

#include <fmt/format.h>

namespace backout::emulators::kubernetes {
namespace {

using nlohmann::json;

std::string Base64(const std::string& data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(data.data()),
                                static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(written));
  return out;
}

int64_t IntAt(const json& object, const char* pointer) {
  json::json_pointer path(pointer);
  if (!object.contains(path) || !object.at(path).is_number_integer()) return 0;
  return object.at(path).get<int64_t>();
}

}  // namespace

bool RolloutComplete(const json& deployment) {
  if (deployment["metadata"].value("generation", 0) >
      IntAt(deployment, "/status/observedGeneration")) {
    return false;
  }
  for (const json& condition : deployment["status"].value("conditions", json::array())) {
    if (condition.value("type", "") == "Progressing" &&
        condition.value("reason", "") == "ProgressDeadlineExceeded") {
      return false;
    }
  }
  int64_t replicas = IntAt(deployment, "/spec/replicas");
  int64_t updated = IntAt(deployment, "/status/updatedReplicas");
  return updated >= replicas && IntAt(deployment, "/status/replicas") <= updated &&
         IntAt(deployment, "/status/availableReplicas") >= updated;
}

Emulator::Emulator(EmulatorOptions options)
    : options_(std::move(options)),
      tls_(MakeTlsMaterial(options_.client_common_name)),
      cluster_(options_.cluster),
      running_(options_.run_controllers) {}

std::expected<std::unique_ptr<Emulator>, std::string> Emulator::Start(EmulatorOptions options) {
  std::unique_ptr<Emulator> emulator(new Emulator(std::move(options)));
  if (emulator->tls_.ca_cert_pem.empty()) {
    return std::unexpected("could not make the emulator's TLS certificates with OpenSSL");
  }
  Emulator* raw = emulator.get();
  ApiServerOptions server_options;
  server_options.token = emulator->options_.token;
  server_options.minor_version = emulator->options_.minor_version;
  server_options.set_controllers_running = [raw](bool running) {
    raw->SetControllersRunning(running);
  };
  emulator->server_ =
      std::make_unique<ApiServer>(emulator->cluster_, emulator->tls_, std::move(server_options));
  if (!emulator->server_->Start(emulator->options_.port)) {
    return std::unexpected(
        fmt::format("could not serve HTTPS on 127.0.0.1:{}", emulator->options_.port));
  }
  emulator->controllers_ = std::thread([raw] { raw->RunControllers(); });
  return emulator;
}

Emulator::~Emulator() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (controllers_.joinable()) controllers_.join();
  if (server_) server_->Stop();
}

std::string Emulator::server_url() const { return fmt::format("https://127.0.0.1:{}", port()); }

void Emulator::SetControllersRunning(bool running) {
  {
    std::lock_guard lock(mutex_);
    running_ = running;
  }
  wake_.notify_all();
}

void Emulator::RunControllers() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (running_) {
      lock.unlock();
      cluster_.Step();
      lock.lock();
    }
    wake_.wait_for(lock, options_.tick, [this] { return stopping_; });
  }
}

bool Emulator::WriteKubeconfig(const std::filesystem::path& path,
                               const KubeconfigOptions& options) const {
  std::string cluster =
      options.insecure_skip_tls_verify
          ? "    insecure-skip-tls-verify: true\n"
          : fmt::format("    certificate-authority-data: {}\n", Base64(tls_.ca_cert_pem));
  std::string user;
  switch (options.auth) {
    case KubeconfigAuth::kToken:
      user = fmt::format("    token: {}\n", options_.token);
      break;
    case KubeconfigAuth::kTokenFile: {
      std::filesystem::path token_path = path;
      token_path += ".token";
      std::ofstream token_file(token_path);
      token_file << options_.token << "\n";
      if (!token_file) return false;
      user = fmt::format("    tokenFile: {}\n", token_path.string());
      break;
    }
    case KubeconfigAuth::kClientCertificate:
      user = fmt::format("    client-certificate-data: {}\n    client-key-data: {}\n",
                         Base64(tls_.client_cert_pem), Base64(tls_.client_key_pem));
      break;
  }
  std::ofstream file(path);
  file << "apiVersion: v1\n"
       << "kind: Config\n"
       << "clusters:\n"
       << "- name: emulator\n"
       << "  cluster:\n"
       << "    server: " << server_url() << "\n"
       << cluster << "contexts:\n"
       << "- name: " << options.context << "\n"
       << "  context:\n"
       << "    cluster: emulator\n"
       << "    user: emulator-user\n"
       << "    namespace: " << options.ns << "\n"
       << "current-context: " << options.context << "\n"
       << "users:\n"
       << "- name: emulator-user\n"
       << "  user:\n"
       << user;
  return static_cast<bool>(file);
}

bool Emulator::WaitForRollout(const std::string& ns, const std::string& name,
                              std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    uint64_t version = cluster_.ResourceVersion();
    ApiResult result = cluster_.Get(Resource::kDeployments, ns, name);
    if (result.status == 200 && RolloutComplete(result.body)) return true;
    cluster_.WaitForEvent(version, std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace backout::emulators::kubernetes
