#include "server/control_plane_server.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>

#include <fmt/format.h>

#include "ledger/checkpoint.h"
#include "providers/registry.h"
#include "server/api_routes.h"

#ifndef BACKOUT_VERSION
#define BACKOUT_VERSION "0.1.0"
#endif

namespace backout::server {
namespace {

constexpr char kLedgerKeyFile[] = "ledger.key";

std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

core::Result<std::optional<TlsFiles>> TlsFilesOf(const app::Config& config) {
  if (!config.tls) return std::nullopt;
  auto path_of = [](const app::SecretRef& ref,
                    std::string_view field) -> core::Result<std::string> {
    if (ref.source() != app::SecretRef::Source::kFile) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "tls.{} must be a file: reference, because the TLS library reads "
                             "the PEM file itself; got {}",
                             field, ref.ToString());
    }
    return ref.target();
  };
  auto certificate = path_of(config.tls->certificate, "certificate");
  if (!certificate) return std::unexpected(certificate.error());
  auto key = path_of(config.tls->private_key, "private_key");
  if (!key) return std::unexpected(key.error());
  return TlsFiles{.certificate_file = *certificate, .private_key_file = *key};
}

ConnectionLimits ConnectionLimitsOf(const app::HttpConfig& http) {
  ConnectionLimits limits;
  limits.request_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(http.request_timeout);
  limits.idle_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(http.idle_timeout);
  limits.max_connections_per_client = static_cast<size_t>(http.max_connections_per_client);
  return limits;
}

// Formats a duration in the largest unit of the config syntax (h, m, s, ms) that divides it, or
// as microseconds, so a log line shows the value as a config file would write it.
std::string FormatConfigDuration(core::Duration duration) {
  using namespace std::chrono;
  if (duration == core::Duration::zero()) return "0";
  if (duration % hours(1) == core::Duration::zero()) return fmt::format("{}h", duration / hours(1));
  if (duration % minutes(1) == core::Duration::zero()) {
    return fmt::format("{}m", duration / minutes(1));
  }
  if (duration % seconds(1) == core::Duration::zero()) {
    return fmt::format("{}s", duration / seconds(1));
  }
  if (duration % milliseconds(1) == core::Duration::zero()) {
    return fmt::format("{}ms", duration / milliseconds(1));
  }
  return fmt::format("{}us", duration.count());
}

// Logs each problem the loader found that does not stop the load. The messages name fields and
// services, never a secret's value.
void LogConfigWarnings(const app::Config& config) {
  for (const std::string& warning : config.warnings) {
    spdlog::warn("component=config event=config_warning warning=\"{}\"", warning);
  }
}

}  // namespace

core::Result<app::ProviderMap> CreateProviders(const app::Config& config, core::Clock& clock) {
  app::ProviderMap providers;
  for (const app::ServiceConfig& service : config.services) {
    nlohmann::json settings = service.provider.settings;
    providers::SecretValues secrets;
    // Secret references sit under `env` (command) and `credentials` (codedeploy); each value
    // reaches the provider under its key.
    for (std::string_view block : {"env", "credentials"}) {
      auto entries = settings.find(block);
      if (entries == settings.end() || !entries->is_object()) continue;
      for (const auto& [name, reference] : entries->items()) {
        auto ref = app::SecretRef::Parse(reference.get<std::string>());
        if (!ref)
          return std::unexpected(ref.error().WithContext(fmt::format("service {}", service.name)));
        auto value = ref->Resolve();
        if (!value) {
          // A reference that cannot be resolved is a mistake in the config file, whatever the
          // reason, so a reload reports invalid argument and not the secret's own not found.
          // The message names the key and the reference only, never a value.
          core::Error error = value.error().WithContext(
              fmt::format("service {}: provider.{}.{}", service.name, block, name));
          error.code = core::ErrorCode::kInvalidArgument;
          return std::unexpected(std::move(error));
        }
        secrets.emplace(name, *std::move(value));
      }
    }
    // Runbook output goes under data_dir unless the binding names a folder, so it survives a
    // restart of the server together with the job that reads it back.
    if (service.provider.kind == "command" && !settings.contains("output_dir")) {
      const auto output_dir = config.data_dir / "run";
      std::error_code ignored;
      std::filesystem::create_directories(output_dir, ignored);
      settings["output_dir"] = output_dir.string();
    }
    auto provider =
        providers::Registry::Create(service.provider.kind, service.name, settings, secrets, clock);
    if (!provider) return std::unexpected(provider.error());
    providers.emplace(service.name,
                      std::shared_ptr<const providers::Provider>(*std::move(provider)));
  }
  return providers;
}

ControlPlaneServer::ControlPlaneServer(const ServeOptions& options, core::Clock& clock)
    : options_(options), clock_(clock) {}

ControlPlaneServer::~ControlPlaneServer() { Stop(); }

core::Result<std::unique_ptr<ControlPlaneServer>> ControlPlaneServer::Start(
    const ServeOptions& options, core::Clock& clock) {
  std::unique_ptr<ControlPlaneServer> server(new ControlPlaneServer(options, clock));

  // Step 1: configuration, ledger key and store.
  auto config = app::Config::Load(options.config_path);
  if (!config) return std::unexpected(config.error());
  LogConfigWarnings(*config);
  std::error_code error;
  std::filesystem::create_directories(config->data_dir, error);
  if (error) {
    return core::MakeError(core::ErrorCode::kUnavailable, "could not create data_dir {}: {}",
                           config->data_dir.string(), error.message());
  }
  auto signer = ledger::Signer::LoadOrCreate(config->data_dir / kLedgerKeyFile);
  if (!signer) return std::unexpected(signer.error());
  const core::Duration checkpoint_interval = config->ledger.checkpoint_interval;
  auto store = store::OpenStore(
      config->database,
      store::StoreOptions{.clock = &clock,
                          .signer = *signer,
                          .checkpoint_interval = checkpoint_interval,
                          .on_job_enqueued = [raw = server.get()] { raw->WakeWorkers(); }});
  if (!store) return std::unexpected(store.error());
  server->store_ = *std::move(store);
  server->checkpoint_interval_ = checkpoint_interval;

  // Step 2: providers, settings and the use cases; the first admin and the policy in force.
  auto providers = CreateProviders(*config, clock);
  if (!providers) return std::unexpected(providers.error());
  auto tls = TlsFilesOf(*config);
  if (!tls) return std::unexpected(tls.error());
  std::string metrics_token;
  if (config->metrics.token) {
    auto token = config->metrics.token->Resolve();
    if (!token) return std::unexpected(token.error().WithContext("metrics.token"));
    metrics_token = *std::move(token);
  }
  HttpServerOptions http_options{.host = config->listen.host,
                                 .port = config->listen.port,
                                 .tls = *tls,
                                 .metrics_token = std::move(metrics_token),
                                 .rate_limit = options.rate_limit,
                                 .connections = ConnectionLimitsOf(config->http)};
  auto settings = app::Settings::Create(*std::move(config), *std::move(providers));
  if (!settings) return std::unexpected(settings.error());
  server->plane_ = std::make_unique<app::ControlPlane>(*server->store_, clock, *settings);
  server->plane_->SetEvidenceSigner(*signer);
  if (auto admin = server->plane_->BootstrapAdmin(); !admin) return std::unexpected(admin.error());
  if (auto policy = server->plane_->RecordPolicy("system"); !policy) {
    return std::unexpected(policy.error());
  }
  if (auto scheduled = server->plane_->ScheduleReconciliation(); !scheduled) {
    return std::unexpected(scheduled.error());
  }

  // Step 3: the HTTP API.
  DeclareServerMetrics(server->metrics_);
  AddApiRoutes(server->router_, *server->plane_,
               ApiEnvironment{.metrics = &server->metrics_,
                              .stopping = &server->stopping_,
                              .version = BACKOUT_VERSION,
                              .reload = [raw = server.get()](std::string_view loaded_by) {
                                return raw->Reload(loaded_by);
                              }});
  app::ControlPlane* plane = server->plane_.get();
  auto http = HttpServer::Create(
      std::move(http_options), server->router_,
      [plane](std::string_view token) { return plane->Authenticate(token); }, clock,
      server->metrics_);
  if (!http) return std::unexpected(http.error());
  server->http_ = *std::move(http);
  auto port = server->http_->Bind();
  if (!port) return std::unexpected(port.error());
  server->port_ = *port;
  server->http_thread_ = std::thread([http = server->http_.get()] { http->Serve(); });

  // Step 4: job workers.
  const std::string host = HostName();
  for (int i = 0; i < options.workers; ++i) {
    app::JobRunnerOptions job_options = options.jobs;
    job_options.owner = fmt::format("{}:{}:worker-{}", host, ::getpid(), i);
    job_options.on_finished = [metrics = &server->metrics_](std::string_view kind,
                                                            std::string_view outcome) {
      if (outcome.empty()) return;
      metrics->Increment(kJobsFinishedTotal,
                         {{"kind", std::string(kind)}, {"outcome", std::string(outcome)}});
    };
    server->runners_.push_back(std::make_unique<app::JobRunner>(*server->plane_, job_options));
  }
  for (auto& runner : server->runners_) {
    server->workers_running_++;
    server->workers_.emplace_back([raw = server.get(), runner = runner.get()](
                                      std::stop_token stop) { raw->WorkerLoop(stop, *runner); });
  }
  // Step 5: detection rules and probes, when any service has them, and the checkpoint signer.
  server->detection_ =
      std::jthread([raw = server.get()](std::stop_token stop) { raw->DetectionLoop(stop); });
  if (checkpoint_interval > core::Duration::zero()) {
    server->checkpointer_ =
        std::jthread([raw = server.get(), checkpoint_interval](std::stop_token stop) {
          raw->CheckpointLoop(stop, checkpoint_interval);
        });
  }
  spdlog::info("component=server event=started port={} workers={} store={}", server->port_,
               options.workers, server->store_->Backend());
  return server;
}

void ControlPlaneServer::WakeWorkers() {
  {
    std::lock_guard lock(work_mutex_);
    ++work_generation_;
  }
  work_ready_.notify_all();
}

void ControlPlaneServer::WorkerLoop(std::stop_token stop, app::JobRunner& runner) {
  while (!stop.stop_requested()) {
    // Read before looking for work, so a job enqueued while this worker looks still wakes it.
    uint64_t seen = 0;
    {
      std::lock_guard lock(work_mutex_);
      seen = work_generation_;
    }
    auto ran = runner.RunOnce(stop);
    if (ran && *ran) continue;
    if (!ran) {
      spdlog::error("component=jobs event=lease_failed error=\"{}\"", ran.error().message);
    }
    // Jobs enqueued by another process, or due later, are found at the next poll.
    std::unique_lock lock(work_mutex_);
    work_ready_.wait_for(lock, stop, options_.poll_interval,
                         [&] { return work_generation_ != seen; });
  }
  workers_running_--;
}

void ControlPlaneServer::DetectionLoop(std::stop_token stop) {
  std::mutex mutex;
  std::condition_variable_any idle;
  while (!stop.stop_requested()) {
    const auto settings = plane_->settings();
    const bool any = std::ranges::any_of(settings->config.services, [](const auto& service) {
      return !service.detection.rules.empty() || !service.detection.probes.empty();
    });
    if (any) {
      if (auto fired = plane_->EvaluateDetection(); !fired) {
        spdlog::error("component=signals event=detection_failed error=\"{}\"",
                      fired.error().message);
      }
    }
    std::unique_lock lock(mutex);
    idle.wait_for(lock, stop, settings->config.signals.evaluation_interval, [] { return false; });
  }
}

void ControlPlaneServer::CheckpointLoop(std::stop_token stop, core::Duration interval) {
  std::mutex mutex;
  std::condition_variable_any idle;
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(mutex);
      idle.wait_for(lock, stop, interval, [] { return false; });
    }
    // A failure here loses nothing: the entries stay in the tree, and the next attempt signs them.
    if (auto signed_checkpoint = store_->SignCheckpoint(); !signed_checkpoint) {
      spdlog::error("component=ledger event=checkpoint_failed error=\"{}\"",
                    signed_checkpoint.error().message);
    }
  }
}

bool ControlPlaneServer::Stop() {
  if (stopped_.exchange(true)) return true;
  stopping_ = true;
  spdlog::info("component=server event=stopping");
  if (http_) http_->Stop();
  if (http_thread_.joinable()) http_thread_.join();

  if (detection_.joinable()) {
    detection_.request_stop();
    detection_.join();
  }
  for (auto& worker : workers_) worker.request_stop();
  const auto step = std::chrono::milliseconds(50);
  for (auto waited = std::chrono::milliseconds(0);
       workers_running_ > 0 && waited < options_.shutdown_grace; waited += step) {
    std::this_thread::sleep_for(step);
  }

  bool clean = workers_running_ == 0;
  if (clean) {
    workers_.clear();
  } else {
    // A worker is still inside a provider call. Its lease goes back so the next start resumes
    // the action through the provider's Resume; the thread is left to the process exit.
    spdlog::warn("component=server event=grace_expired workers_running={}",
                 workers_running_.load());
    for (auto& runner : runners_) runner->ReleaseCurrentLease();
    for (auto& worker : workers_) worker.detach();
    workers_.clear();
  }
  if (checkpointer_.joinable()) {
    checkpointer_.request_stop();
    checkpointer_.join();
  }
  // The entries of the last interval get their checkpoint before the process ends.
  if (store_ != nullptr) {
    if (auto signed_checkpoint = store_->SignCheckpoint(); !signed_checkpoint) {
      spdlog::error("component=ledger event=checkpoint_failed error=\"{}\"",
                    signed_checkpoint.error().message);
    }
  }
  spdlog::info("component=server event=stopped clean={}", clean);
  return clean;
}

core::Result<std::string> ControlPlaneServer::Reload(std::string_view loaded_by) {
  auto config = app::Config::Load(options_.config_path);
  if (!config) return std::unexpected(config.error());
  LogConfigWarnings(*config);
  const auto current = plane_->settings();
  if (config->database != current->config.database ||
      config->listen.ToString() != current->config.listen.ToString() ||
      config->http != current->config.http) {
    spdlog::warn(
        "component=server event=reload_partial reason=\"listen, database and http changes "
        "take effect at the next start\"");
  }
  auto providers = CreateProviders(*config, clock_);
  if (!providers) return std::unexpected(providers.error());
  auto settings = app::Settings::Create(*std::move(config), *std::move(providers));
  if (!settings) return std::unexpected(settings.error());
  if (auto reloaded = plane_->Reload(*settings, loaded_by); !reloaded) {
    return std::unexpected(reloaded.error());
  }
  if (auto scheduled = plane_->ScheduleReconciliation(); !scheduled) {
    return std::unexpected(scheduled.error());
  }
  // The store and the checkpoint thread took the interval at start.
  if (const core::Duration loaded = (*settings)->config.ledger.checkpoint_interval;
      loaded != checkpoint_interval_) {
    spdlog::warn(
        "component=server event=reload_partial key=ledger.checkpoint_interval running={} "
        "loaded={} reason=\"the key is read at start only; a restart applies the loaded value\"",
        FormatConfigDuration(checkpoint_interval_), FormatConfigDuration(loaded));
  }
  spdlog::info("component=server event=reloaded by={} config_sha256={}", loaded_by,
               (*settings)->config_sha256);
  return (*settings)->config_sha256;
}

}  // namespace backout::server
