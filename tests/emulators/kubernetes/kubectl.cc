#include "kubectl.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace backout::emulators::kubernetes {
namespace {

std::atomic<uint64_t> g_run_counter{0};

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace

std::string KubectlPath() {
  const char* configured = std::getenv("KUBECTL");
  return configured != nullptr && configured[0] != '\0' ? configured : "/usr/bin/kubectl";
}

std::optional<KubectlProcess> KubectlProcess::Start(const std::filesystem::path& kubeconfig,
                                                    const std::filesystem::path& work_dir,
                                                    const std::vector<std::string>& args) {
  uint64_t run = ++g_run_counter;
  std::filesystem::path cache = work_dir / ("kubectl-cache-" + std::to_string(run));
  std::filesystem::create_directories(cache);

  KubectlProcess process;
  process.out_path_ = work_dir / ("kubectl-" + std::to_string(run) + ".out");
  process.err_path_ = work_dir / ("kubectl-" + std::to_string(run) + ".err");
  std::vector<std::string> argv = {KubectlPath(), "--kubeconfig", kubeconfig.string(),
                                   "--cache-dir", cache.string()};
  argv.insert(argv.end(), args.begin(), args.end());

  process.started_ = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    int out = open(process.out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(process.err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int null = open("/dev/null", O_RDONLY);
    if (out < 0 || err < 0 || null < 0) _exit(127);
    dup2(null, 0);
    dup2(out, 1);
    dup2(err, 2);
    std::vector<char*> raw;
    for (std::string& arg : argv) raw.push_back(arg.data());
    raw.push_back(nullptr);
    // The home folder contains no kubeconfig or cache that could change the result.
    setenv("HOME", work_dir.c_str(), 1);
    unsetenv("KUBECONFIG");
    execv(raw[0], raw.data());
    _exit(127);
  }
  process.pid_ = pid;
  return process;
}

KubectlProcess::KubectlProcess(KubectlProcess&& other) noexcept
    : pid_(other.pid_),
      status_(other.status_),
      out_path_(std::move(other.out_path_)),
      err_path_(std::move(other.err_path_)),
      started_(other.started_) {
  other.pid_ = -1;
}

KubectlProcess::~KubectlProcess() {
  if (pid_ > 0 && !status_) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

bool KubectlProcess::Running() {
  if (pid_ <= 0 || status_) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    status_ = status;
    return false;
  }
  return true;
}

KubectlResult KubectlProcess::Wait(std::chrono::milliseconds timeout) {
  KubectlResult result;
  auto deadline = started_ + timeout;
  while (Running()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
      status_ = status;
      result.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  result.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started_);
  if (status_ && WIFEXITED(*status_) && !result.timed_out) result.exit_code = WEXITSTATUS(*status_);
  result.out = ReadFile(out_path_);
  result.err = ReadFile(err_path_);
  return result;
}

KubectlResult RunKubectl(const std::filesystem::path& kubeconfig,
                         const std::filesystem::path& work_dir,
                         const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  auto process = KubectlProcess::Start(kubeconfig, work_dir, args);
  if (!process) return KubectlResult{};
  return process->Wait(timeout);
}

}  // namespace backout::emulators::kubernetes
