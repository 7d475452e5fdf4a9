#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "http/client.h"
#include "providers/provider.h"

namespace backout::providers {

// The health checks a provider binding may configure: a local command, an HTTP URL, or both.
struct HealthProbeSettings {
  std::vector<std::string> command;  // argv, absolute program first; exit code 0 means healthy
  std::string url;                   // http:// or https://; a 2xx status means healthy
  std::chrono::milliseconds timeout{10'000};
};

// Runs a binding's health checks for CheckReadiness, and fetches other status URLs such as a
// GitOps controller's deployed revision. Thread-safe: every method may be called concurrently.
// Commands run without a shell, with PATH, HOME, LANG, LC_ALL, TZ and TMPDIR from the server's
// environment and the variables the caller passes.
class HealthProbe {
 public:
  // `clock` must outlive the probe. The HTTP client is built on the first request, because
  // building it loads libcurl, which a binding with only a health command never needs.
  static core::Result<std::unique_ptr<HealthProbe>> Create(std::string_view service,
                                                           HealthProbeSettings settings,
                                                           core::Clock& clock);

  bool Configured() const { return !settings_.command.empty() || !settings_.url.empty(); }
  const HealthProbeSettings& settings() const { return settings_; }

  // Runs the command, then requests the URL; ready only when every configured check passes.
  // `env` adds NAME=VALUE variables for the command. Fails with kFailedPrecondition when no
  // check is configured, and with kUnavailable when a URL is configured but the HTTP client
  // cannot be built. A check that runs and fails is a Readiness with ready = false.
  core::Result<Readiness> Check(const std::vector<std::string>& env) const;

  // Sends GET `url` and returns the body of a 2xx response. Fails with kUnavailable or kTimeout
  // when no response arrived or the HTTP client cannot be built, and kFailedPrecondition for any
  // other status.
  core::Result<std::string> Fetch(const std::string& url) const;

  // Runs `argv` with the probe's time limit. Returns the exit code's description and the first
  // line of output; `ok` is true on exit code 0.
  struct CommandRun {
    bool ok = false;
    bool timed_out = false;
    std::string exit;
    std::string output;  // stdout's last line, or stderr's when stdout is empty
  };
  core::Result<CommandRun> RunCommand(const std::vector<std::string>& argv,
                                      const std::vector<std::string>& env,
                                      std::chrono::milliseconds timeout) const;

 private:
  HealthProbe(std::string service, HealthProbeSettings settings,
              std::vector<std::string> inherited_env, core::Clock& clock);

  // Returns the HTTP client, building it on the first call. Fails with kUnavailable, naming the
  // service, when it cannot be built (libcurl cannot be loaded); a later call tries again.
  core::Result<http::Client*> HttpClient() const;

  std::string service_;
  HealthProbeSettings settings_;
  std::vector<std::string> inherited_env_;
  core::Clock& clock_;
  mutable std::mutex client_mutex_;
  mutable std::unique_ptr<http::Client> client_;  // built by HttpClient()
};

}  // namespace backout::providers
