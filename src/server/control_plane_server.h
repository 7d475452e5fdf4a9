#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "app/config.h"
#include "app/control_plane.h"
#include "app/job_runner.h"
#include "core/clock.h"
#include "core/error.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/router.h"
#include "store/store.h"

namespace backout::server {

struct ServeOptions {
  std::filesystem::path config_path;
  int workers = 2;  // job worker threads
  // How long a shutdown waits for running job steps before releasing their leases.
  std::chrono::seconds shutdown_grace{30};
  std::chrono::milliseconds poll_interval{250};  // how often an idle worker looks for jobs
  app::JobRunnerOptions jobs;                    // owner is filled in per worker
  RateLimiter::Options rate_limit;
};

// Creates one provider per configured service through the provider registry, resolving the
// secret references of each binding. Fails on the first service whose provider cannot be built.
core::Result<app::ProviderMap> CreateProviders(const app::Config& config, core::Clock& clock);

// The whole control plane in one process: store, ledger key, use cases, HTTP API and job
// workers. Start() returns once the port is bound and every thread runs.
class ControlPlaneServer {
 public:
  static core::Result<std::unique_ptr<ControlPlaneServer>> Start(const ServeOptions& options,
                                                                 core::Clock& clock);
  ~ControlPlaneServer();

  int port() const { return port_; }
  app::ControlPlane& plane() { return *plane_; }
  store::Store& store() { return *store_; }
  Metrics& metrics() { return metrics_; }
  const Router& router() const { return router_; }

  // Stops accepting requests, lets running job steps finish for up to the grace period, then
  // releases the leases still held. Idempotent; blocks until done. Returns false when a worker
  // was still inside a provider call at the end of the grace period: its thread is detached, and
  // the process should exit without running destructors (std::_Exit).
  bool Stop();

  // Loads the config file again and records the new policy, loaded by `loaded_by`. Returns the
  // new file's SHA-256 digest.
  core::Result<std::string> Reload(std::string_view loaded_by);

 private:
  ControlPlaneServer(const ServeOptions& options, core::Clock& clock);
  void WorkerLoop(std::stop_token stop, app::JobRunner& runner);
  // Evaluates the detection rules and probes every signals.evaluation_interval.
  void DetectionLoop(std::stop_token stop);
  // Wakes the idle workers: a job was just enqueued.
  void WakeWorkers();
  // Signs a checkpoint every `interval` when entries were appended since the last one.
  void CheckpointLoop(std::stop_token stop, core::Duration interval);

  ServeOptions options_;
  core::Clock& clock_;
  Metrics metrics_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<app::ControlPlane> plane_;
  Router router_;
  std::unique_ptr<HttpServer> http_;
  int port_ = 0;
  std::thread http_thread_;
  std::vector<std::unique_ptr<app::JobRunner>> runners_;
  std::vector<std::jthread> workers_;
  std::atomic<int> workers_running_{0};
  std::jthread detection_;
  std::jthread checkpointer_;
  // ledger.checkpoint_interval as read at start. A reload does not change it.
  core::Duration checkpoint_interval_{};
  // Idle workers wait on it for up to poll_interval; enqueueing a job bumps the generation.
  std::mutex work_mutex_;
  std::condition_variable_any work_ready_;
  uint64_t work_generation_ = 0;  // guarded by work_mutex_
};

}  // namespace backout::server
