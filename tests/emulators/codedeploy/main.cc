// codedeploy_emulator: serves the emulated CodeDeploy API on 127.0.0.1 until SIGINT or SIGTERM.
// Prints the port on the first line of stdout once it accepts connections.

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "emulators/codedeploy/emulator.h"

namespace {

using nlohmann::json;

// The state used without --state: one application with one three-instance deployment group and
// two registered S3 revisions.
json DefaultState() {
  auto revision = [](const char* key) {
    return json{
        {"revision",
         {{"revisionType", "S3"},
          {"s3Location", {{"bucket", "demo-bucket"}, {"key", key}, {"bundleType", "zip"}}}}}};
  };
  json group{{"applicationName", "demo-app"},
             {"deploymentGroupName", "demo-group"},
             {"instances", {"i-0a1b2c3d4e5f60001", "i-0a1b2c3d4e5f60002", "i-0a1b2c3d4e5f60003"}}};
  json state;
  state["applications"] = {"demo-app"};
  state["deploymentGroups"] = json::array({group});
  state["revisions"] = json::array({revision("app-v1.zip"), revision("app-v2.zip")});
  return state;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Emulated AWS CodeDeploy API (JSON 1.1, SigV4-checked) on 127.0.0.1"};
  int port = 0;
  std::string state_file;
  std::string access_key_id;
  std::string secret_access_key;
  std::string region;
  int lifecycle_event_ms = -1;
  int queue_ms = -1;
  int list_page_size = 0;
  app.add_option("--port", port, "TCP port on 127.0.0.1; 0 picks a free one")
      ->capture_default_str();
  app.add_option("--state", state_file, "JSON state document (see README.md)");
  app.add_option("--access-key-id", access_key_id, "accepted access key id (replaces the state's)");
  app.add_option("--secret-access-key", secret_access_key, "secret of --access-key-id");
  app.add_option("--region", region, "region the signatures must be scoped to; default us-east-1");
  app.add_option("--lifecycle-event-ms", lifecycle_event_ms,
                 "duration of each lifecycle event on each instance, in milliseconds");
  app.add_option("--queue-ms", queue_ms, "time from Created to InProgress, in milliseconds");
  app.add_option("--list-page-size", list_page_size, "deployment ids per ListDeployments page");
  CLI11_PARSE(app, argc, argv);

  json state = DefaultState();
  if (!state_file.empty()) {
    std::ifstream in(state_file);
    if (!in) {
      std::cerr << "codedeploy_emulator: cannot read " << state_file << "\n";
      return 2;
    }
    try {
      state = json::parse(in);
    } catch (const json::parse_error& error) {
      std::cerr << "codedeploy_emulator: " << state_file << ": " << error.what() << "\n";
      return 2;
    }
  }
  if (!access_key_id.empty() || !secret_access_key.empty()) {
    state["credentials"] = {
        {{"accessKeyId", access_key_id}, {"secretAccessKey", secret_access_key}}};
  }
  if (!region.empty()) state["region"] = region;
  if (lifecycle_event_ms >= 0) state["timing"]["lifecycleEventMs"] = lifecycle_event_ms;
  if (queue_ms >= 0) state["timing"]["queueMs"] = queue_ms;
  if (list_page_size > 0) state["listPageSize"] = list_page_size;

  // Block the stop signals before any thread starts, so only sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto emulator = backout::emulators::codedeploy::Emulator::Create(state);
  if (!emulator) {
    std::cerr << "codedeploy_emulator: invalid state: " << emulator.error() << "\n";
    return 2;
  }
  if (auto started = (*emulator)->Start(port); !started) {
    std::cerr << "codedeploy_emulator: " << started.error() << "\n";
    return 1;
  }
  std::printf("%d\n", (*emulator)->port());
  std::fflush(stdout);

  int received = 0;
  sigwait(&signals, &received);
  (*emulator)->Stop();
  return 0;
}
