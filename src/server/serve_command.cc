#include "server/serve_command.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "app/config.h"
#include "server/control_plane_server.h"
#include "store/system_clock.h"

namespace backout::server {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;

// Rejects a path that is not a regular file, such as a device or a FIFO, as a usage error
// before the config loader opens it. Config::Load checks again for a reload.
CLI::Validator RegularFileValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        struct stat info {};
        if (::stat(text.c_str(), &info) != 0 || S_ISREG(info.st_mode)) return "";
        return fmt::format("{} is not a regular file; give the path of the YAML file", text);
      },
      "FILE", "regular file");
}

// Runs the server until SIGTERM or SIGINT. The signals are blocked in every thread and taken
// here with sigwait, so no handler runs at an arbitrary point of another thread.
int RunServe(const ServeOptions& options) {
  // main() quiets logging for client commands; a server logs its lifecycle and every request.
  spdlog::set_level(spdlog::level::info);
  const int arenas = LimitMallocArenas();
  if (arenas > 0) {
    spdlog::info("component=server event=malloc_arenas_limited arenas={}", arenas);
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A client that disconnects during a response must not end the server.
  signal(SIGPIPE, SIG_IGN);

  store::SystemClock clock;
  auto server = ControlPlaneServer::Start(options, clock);
  if (!server) {
    spdlog::error("component=server event=start_failed error=\"{}\"", server.error().message);
    return kExitFailed;
  }

  while (true) {
    int received = 0;
    if (sigwait(&signals, &received) != 0) continue;
    if (received == SIGHUP) {
      auto reloaded = (*server)->Reload("SIGHUP");
      if (!reloaded) {
        spdlog::error("component=server event=reload_failed error=\"{}\" config_kept=true",
                      reloaded.error().message);
      }
      continue;
    }
    spdlog::info("component=server event=signal signal={}",
                 received == SIGTERM ? "SIGTERM" : "SIGINT");
    break;
  }

  const bool clean = (*server)->Stop();
  if (!clean) {
    // Detached workers still reference the server; end without running destructors.
    spdlog::shutdown();
    std::_Exit(kExitOk);
  }
  server->reset();
  return kExitOk;
}

}  // namespace

int LimitMallocArenas() {
  const char* configured = std::getenv("MALLOC_ARENA_MAX");
  if (configured != nullptr && *configured != '\0') return 0;
  if (mallopt(M_ARENA_MAX, kMallocArenas) != 1) {
    spdlog::warn(
        "component=server event=malloc_arena_cap_failed arenas={} error=\"mallopt(M_ARENA_MAX) "
        "failed; set MALLOC_ARENA_MAX in the environment instead\"",
        kMallocArenas);
    return 0;
  }
  return kMallocArenas;
}

void AddConfigCommand(CLI::App& app, int& exit_status) {
  CLI::App* config = app.add_subcommand("config", "Check a server configuration file offline");
  config->require_subcommand(1);
  auto path = std::make_shared<std::string>();
  CLI::App* check = config->add_subcommand(
      "check",
      "Load a configuration file as `serve` does, without starting the server, and print its "
      "errors and warnings. Secrets are checked as references, not read. Exit status: 0 valid "
      "(warnings included), 1 invalid, 2 usage error");
  check->add_option("FILE", *path, "YAML configuration file")
      ->required()
      ->check(CLI::ExistingFile)
      ->check(RegularFileValidator());
  check->callback([path, &exit_status] {
    auto loaded = app::Config::Load(*path);
    if (!loaded) {
      fmt::print(stderr, "error: {}\n", loaded.error().message);
      exit_status = kExitFailed;
      return;
    }
    for (const std::string& warning : loaded->warnings) {
      fmt::print(stderr, "warning: {}\n", warning);
    }
    const size_t services = loaded->services.size();
    const size_t warnings = loaded->warnings.size();
    fmt::print("{} is valid: {} service{}, {} warning{}\n", *path, services,
               services == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
    exit_status = kExitOk;
  });
}

void AddServeCommand(CLI::App& app, std::function<int()>& run_serve) {
  auto options = std::make_shared<ServeOptions>();
  auto grace_seconds = std::make_shared<int>(30);
  CLI::App* serve = app.add_subcommand(
      "serve",
      "Run the control plane: the HTTP API and the job workers (SIGTERM stops it, SIGHUP "
      "reloads the configuration)");
  serve->add_option("--config", options->config_path, "YAML configuration file to load")
      ->required()
      ->check(CLI::ExistingFile)
      ->check(RegularFileValidator());
  serve
      ->add_option("--workers", options->workers,
                   "Number of job worker threads that run rollbacks and validations")
      ->default_val(2)
      ->check(CLI::Range(1, 64));
  serve
      ->add_option("--shutdown-grace", *grace_seconds,
                   "Seconds a shutdown waits for running job steps before releasing their "
                   "leases")
      ->default_val(30)
      ->check(CLI::Range(0, 3600));
  serve->callback([options, grace_seconds, &run_serve] {
    options->shutdown_grace = std::chrono::seconds(*grace_seconds);
    run_serve = [options] { return RunServe(*options); };
  });
}

}  // namespace backout::server
