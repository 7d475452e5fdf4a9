#include "emulators/launchdarkly/emulator.h"

#include <httplib.h>

#include <random>

#include <fmt/format.h>

namespace backout::emulators::launchdarkly {
namespace {

using nlohmann::json;

constexpr std::string_view kApiPrefix = "/api/v2/";
constexpr std::string_view kSemanticPatch = "domain-model=launchdarkly.semanticpatch";
// The per-route budget the X-Ratelimit-Route-Remaining header reports. The emulator does not
// enforce it, so tests inject rate limiting with the fail-call hook.
constexpr int kRouteBudget = 100;

Time Now() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) parts.emplace_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

std::string RequestId() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  return fmt::format("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", random() & 0xffffffff,
                     random() & 0xffff, random() & 0xfff, random() & 0xfff,
                     random() & 0xffffffffffff);
}

void ReplyError(httplib::Response& response, const ApiError& error) {
  response.status = error.status;
  if (error.retry_after_seconds) {
    response.set_header("Retry-After", std::to_string(*error.retry_after_seconds));
  }
  json body{{"code", error.code}, {"message", error.message}, {"id", RequestId()}};
  response.set_content(body.dump(), "application/json");
}

}  // namespace

std::expected<std::unique_ptr<Emulator>, std::string> Emulator::Create(const json& state) {
  auto model = Model::FromJson(state, Now());
  if (!model) return std::unexpected(model.error());
  std::unique_ptr<Emulator> emulator(new Emulator());
  emulator->model_ = std::make_unique<Model>(std::move(*model));
  return emulator;
}

Emulator::~Emulator() { Stop(); }

std::expected<void, std::string> Emulator::Start(int port) {
  server_ = std::make_unique<httplib::Server>();
  server_->set_tcp_nodelay(true);
  server_->set_keep_alive_timeout(1);
  auto api = [this](const httplib::Request& request, httplib::Response& response) {
    Handle(request, response);
  };
  server_->Get(R"(/api/v2/.*)", api);
  server_->Patch(R"(/api/v2/.*)", api);
  for (std::string name : {"fail-call", "approval-required", "pending-change", "delay-patch"}) {
    server_->Post("/_emulator/" + name,
                  [this, name](const httplib::Request& request, httplib::Response& response) {
                    HandleHook(request, response, name);
                  });
  }
  server_->Get("/_emulator/state", [this](const httplib::Request&, httplib::Response& response) {
    response.set_content(Dump().dump(2), "application/json");
  });
  server_->Get("/_emulator/calls", [this](const httplib::Request&, httplib::Response& response) {
    std::lock_guard lock(mutex_);
    json calls = json::array();
    for (const auto& [method, path] : calls_) calls.push_back({{"method", method}, {"path", path}});
    response.set_content(calls.dump(), "application/json");
  });

  if (port == 0) {
    port_ = server_->bind_to_any_port("127.0.0.1");
  } else {
    port_ = server_->bind_to_port("127.0.0.1", port) ? port : -1;
  }
  if (port_ <= 0) return std::unexpected(fmt::format("cannot bind 127.0.0.1:{}", port));
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return {};
}

void Emulator::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string Emulator::Url() const { return fmt::format("http://127.0.0.1:{}", port_); }

void Emulator::Handle(const httplib::Request& request, httplib::Response& response) {
  response.set_header(
      "X-Ratelimit-Reset",
      std::to_string((Now() + std::chrono::seconds(10)).time_since_epoch().count()));
  response.set_header("X-Ratelimit-Route-Remaining", std::to_string(kRouteBudget));

  std::chrono::milliseconds delay{0};
  ApiResult<json> result;
  {
    std::lock_guard lock(mutex_);
    calls_.emplace_back(request.method, request.path);

    // LaunchDarkly checks the token before anything else: a missing or unknown one is a 401.
    std::optional<Caller> caller = model_->FindCaller(request.get_header_value("Authorization"));
    if (!caller) {
      ReplyError(response, ApiError{401, "unauthorized", "Invalid access token"});
      return;
    }
    for (auto it = failures_.begin(); it != failures_.end(); ++it) {
      if (it->method != request.method || !request.path.starts_with(it->path_prefix)) continue;
      ApiError error = it->error;
      if (--it->remaining <= 0) failures_.erase(it);
      ReplyError(response, error);
      return;
    }
    result = Route(request, *caller);
    if (request.method == "PATCH" && delayed_patches_ > 0) {
      --delayed_patches_;
      delay = patch_delay_;
    }
  }

  if (delay.count() > 0) std::this_thread::sleep_for(delay);
  if (!result) {
    ReplyError(response, result.error());
    return;
  }
  response.status = 200;
  response.set_content(result->dump(), "application/json");
}

ApiResult<json> Emulator::Route(const httplib::Request& request, const Caller& caller) {
  std::vector<std::string> parts =
      SplitPath(std::string_view(request.path).substr(kApiPrefix.size()));
  auto param = [&request](const char* name) {
    return request.has_param(name) ? request.get_param_value(name) : std::string();
  };
  ApiError unknown{404, "not_found", fmt::format("Unknown resource {}", request.path)};

  if (request.method == "GET") {
    if (parts.size() == 3 && parts[0] == "flags") {
      return model_->GetFlag(parts[1], parts[2], param("env"));
    }
    if (parts.size() == 5 && parts[0] == "flags" && parts[4] == "dependent-flags") {
      return model_->DependentFlags(parts[1], parts[2], parts[3]);
    }
    if (parts.size() == 1 && parts[0] == "auditlog") {
      std::map<std::string, std::string> query;
      for (const auto& [name, value] : request.params) query[name] = value;
      return model_->ListAuditLog(query);
    }
    if (parts.size() == 2 && parts[0] == "auditlog") return model_->GetAuditEntry(parts[1]);
    return std::unexpected(unknown);
  }

  if (request.method == "PATCH" && parts.size() == 3 && parts[0] == "flags") {
    json body;
    try {
      body = json::parse(request.body);
    } catch (const json::parse_error& error) {
      return std::unexpected(ApiError{400, "invalid_request", error.what()});
    }
    bool semantic =
        request.get_header_value("Content-Type").find(kSemanticPatch) != std::string::npos;
    return model_->PatchFlag(parts[1], parts[2], body, semantic, param("ignoreConflicts") == "true",
                             caller, Now());
  }
  return std::unexpected(
      ApiError{405, "method_not_allowed",
               fmt::format("{} is not allowed on {}", request.method, request.path)});
}

void Emulator::HandleHook(const httplib::Request& request, httplib::Response& response,
                          const std::string& name) {
  json body;
  try {
    body = request.body.empty() ? json::object() : json::parse(request.body);
  } catch (const json::parse_error& error) {
    response.status = 400;
    response.set_content(json{{"error", error.what()}}.dump(), "application/json");
    return;
  }

  std::expected<void, std::string> done;
  if (name == "fail-call") {
    ApiError error{body.value("status", 429), body.value("code", "rate_limited"),
                   body.value("message", "You've exceeded the API rate limit. Try again later."),
                   std::nullopt};
    if (body.contains("retryAfter")) error.retry_after_seconds = body.value("retryAfter", 1);
    FailNextCalls(InjectedFailure{body.value("method", "PATCH"), body.value("path", ""), error,
                                  body.value("times", 1)});
  } else if (name == "approval-required") {
    done =
        SetApprovalRequired(body.value("project", "default"),
                            body.value("environment", "production"), body.value("required", true));
  } else if (name == "pending-change") {
    done = SetPendingChange(body.value("project", "default"), body.value("flag", ""),
                            body.value("environment", "production"), body.value("pending", true));
  } else if (name == "delay-patch") {
    DelayNextPatches(std::chrono::milliseconds(body.value("delayMs", 1000)),
                     body.value("times", 1));
  }
  if (!done) {
    response.status = 400;
    response.set_content(json{{"error", done.error()}}.dump(), "application/json");
    return;
  }
  response.set_content(R"({"ok":true})", "application/json");
}

void Emulator::FailNextCalls(InjectedFailure failure) {
  std::lock_guard lock(mutex_);
  failure.remaining = std::max(1, failure.remaining);
  failures_.push_back(std::move(failure));
}

std::expected<void, std::string> Emulator::SetApprovalRequired(const std::string& project,
                                                               const std::string& environment,
                                                               bool required) {
  std::lock_guard lock(mutex_);
  return model_->SetApprovalRequired(project, environment, required);
}

std::expected<void, std::string> Emulator::SetPendingChange(const std::string& project,
                                                            const std::string& key,
                                                            const std::string& environment,
                                                            bool pending) {
  std::lock_guard lock(mutex_);
  return model_->SetPendingChange(project, key, environment, pending);
}

void Emulator::DelayNextPatches(std::chrono::milliseconds delay, int times) {
  std::lock_guard lock(mutex_);
  patch_delay_ = delay;
  delayed_patches_ = std::max(1, times);
}

json Emulator::Dump() {
  std::lock_guard lock(mutex_);
  return model_->Dump();
}

int Emulator::CallCount(const std::string& method, const std::string& path_prefix) {
  std::lock_guard lock(mutex_);
  int count = 0;
  for (const auto& [call_method, path] : calls_) {
    if (call_method == method && path.starts_with(path_prefix)) ++count;
  }
  return count;
}

}  // namespace backout::emulators::launchdarkly
