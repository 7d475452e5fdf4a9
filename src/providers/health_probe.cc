#include "providers/health_probe.h"

#include <array>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "providers/command/process.h"

namespace backout::providers {
namespace {

constexpr std::array<std::string_view, 6> kInheritedVariables = {"PATH",   "HOME", "LANG",
                                                                 "LC_ALL", "TZ",   "TMPDIR"};
constexpr std::string_view kDefaultPath = "/usr/local/bin:/usr/bin:/bin";
constexpr std::chrono::milliseconds kKillGrace{5'000};
constexpr size_t kOutputMax = 16 * 1024;
constexpr size_t kQuotedMax = 300;

std::string Trim(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return "";
  size_t end = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(begin, end - begin + 1));
}

// The last non-empty line of `text`, cut to a length fit for a message.
std::string LastLine(std::string_view text) {
  std::string trimmed = Trim(text);
  size_t newline = trimmed.rfind('\n');
  std::string line = newline == std::string::npos ? trimmed : Trim(trimmed.substr(newline + 1));
  if (line.size() > kQuotedMax) line = line.substr(0, kQuotedMax) + "…";
  return line;
}

std::string FormatLimit(std::chrono::milliseconds limit) {
  if (limit.count() % 1000 == 0) return fmt::format("{}s", limit.count() / 1000);
  return fmt::format("{}ms", limit.count());
}

core::ErrorCode ToCoreCode(http::ErrorKind kind) {
  switch (kind) {
    case http::ErrorKind::kInvalidArgument:
      return core::ErrorCode::kInvalidArgument;
    case http::ErrorKind::kUnavailable:
      return core::ErrorCode::kUnavailable;
    case http::ErrorKind::kTimeout:
      return core::ErrorCode::kTimeout;
    case http::ErrorKind::kInternal:
      return core::ErrorCode::kInternal;
  }
  return core::ErrorCode::kInternal;
}

}  // namespace

core::Result<std::unique_ptr<HealthProbe>> HealthProbe::Create(std::string_view service,
                                                               HealthProbeSettings settings,
                                                               core::Clock& clock) {
  std::vector<std::string> inherited;
  for (std::string_view name : kInheritedVariables) {
    const char* value = std::getenv(std::string(name).c_str());
    if (value != nullptr) {
      inherited.push_back(fmt::format("{}={}", name, value));
    } else if (name == "PATH") {
      inherited.push_back(fmt::format("PATH={}", kDefaultPath));
    }
  }
  return std::unique_ptr<HealthProbe>(
      new HealthProbe(std::string(service), std::move(settings), std::move(inherited), clock));
}

HealthProbe::HealthProbe(std::string service, HealthProbeSettings settings,
                         std::vector<std::string> inherited_env, core::Clock& clock)
    : service_(std::move(service)),
      settings_(std::move(settings)),
      inherited_env_(std::move(inherited_env)),
      clock_(clock) {}

core::Result<http::Client*> HealthProbe::HttpClient() const {
  std::lock_guard lock(client_mutex_);
  if (client_ != nullptr) return client_.get();
  http::ClientOptions options;
  options.name = fmt::format("provider {}", service_);
  options.total_timeout = settings_.timeout;
  options.connect_timeout = std::min(settings_.timeout, std::chrono::milliseconds(10'000));
  options.retry.max_attempts = 1;
  options.now = [&clock = clock_] { return clock.Now(); };
  auto client = http::Client::Create(std::move(options));
  if (!client) {
    return core::MakeError(core::ErrorCode::kUnavailable,
                           "service {}: cannot build the HTTP client for health checks: {}",
                           service_, client.error().message);
  }
  client_ = std::move(*client);
  return client_.get();
}

core::Result<HealthProbe::CommandRun> HealthProbe::RunCommand(
    const std::vector<std::string>& argv, const std::vector<std::string>& env,
    std::chrono::milliseconds timeout) const {
  command::ProcessSpec spec;
  spec.argv = argv;
  spec.env = inherited_env_;
  spec.env.push_back(fmt::format("BACKOUT_SERVICE={}", service_));
  spec.env.insert(spec.env.end(), env.begin(), env.end());
  std::error_code error;
  spec.output_dir = std::filesystem::temp_directory_path(error);
  if (error) spec.output_dir = "/tmp";

  auto run = command::RunProcess(spec, command::ProcessLimits{timeout, kKillGrace, kOutputMax}, {},
                                 nullptr);
  if (!run) {
    return core::MakeError(core::ErrorCode::kUnavailable, "service {}: {} did not start: {}",
                           service_, argv[0], run.error().message);
  }

  CommandRun result;
  result.timed_out = run->timed_out;
  result.ok = !run->timed_out && run->exit.Succeeded();
  result.exit = run->timed_out ? fmt::format("timed out after {}", FormatLimit(timeout))
                               : run->exit.Describe();
  result.output = LastLine(run->stdout_output.tail);
  if (result.output.empty()) result.output = LastLine(run->stderr_output.tail);
  return result;
}

core::Result<Readiness> HealthProbe::Check(const std::vector<std::string>& env) const {
  if (!Configured()) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "service {}: no health command or URL is configured, so readiness "
                           "cannot be evaluated; add `health` or `health_url` to the provider "
                           "settings",
                           service_);
  }

  std::vector<std::string> passed;
  if (!settings_.command.empty()) {
    auto run = RunCommand(settings_.command, env, settings_.timeout);
    if (!run) return Readiness{false, run.error().message};
    std::string detail = run->output.empty() ? "" : fmt::format(": {}", run->output);
    if (!run->ok) {
      return Readiness{false, fmt::format("health command {} ended with {}{}", settings_.command[0],
                                          run->exit, detail)};
    }
    passed.push_back(
        fmt::format("health command {} exited with code 0{}", settings_.command[0], detail));
  }

  if (!settings_.url.empty()) {
    http::Request request;
    request.url = settings_.url;
    auto client = HttpClient();
    if (!client) return std::unexpected(client.error());
    auto response = (*client)->Send(request);
    if (!response) {
      return Readiness{false, fmt::format("health URL {} did not respond: {}", settings_.url,
                                          response.error().message)};
    }
    if (response->status < 200 || response->status > 299) {
      return Readiness{false, fmt::format("health URL {} returned status {}: {}", settings_.url,
                                          response->status, LastLine(response->body))};
    }
    passed.push_back(
        fmt::format("health URL {} returned status {}", settings_.url, response->status));
  }
  return Readiness{true, fmt::format("{}", fmt::join(passed, "; "))};
}

core::Result<std::string> HealthProbe::Fetch(const std::string& url) const {
  http::Request request;
  request.url = url;
  auto client = HttpClient();
  if (!client) return std::unexpected(client.error());
  auto response = (*client)->Send(request);
  if (!response) {
    return core::MakeError(ToCoreCode(response.error().kind), "service {}: GET {} failed: {}",
                           service_, url, response.error().message);
  }
  if (response->status < 200 || response->status > 299) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "service {}: GET {} returned status {}: {}", service_, url,
                           response->status, LastLine(response->body));
  }
  return response->body;
}

}  // namespace backout::providers
