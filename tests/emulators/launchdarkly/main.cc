// launchdarkly_emulator: serves the emulated LaunchDarkly REST API v2 on 127.0.0.1 until SIGINT
// or SIGTERM. Prints the port on the first line of stdout once it accepts connections.

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "emulators/launchdarkly/emulator.h"

namespace {

using nlohmann::json;

// The state used without --state: project `default` (production, staging) with one boolean
// flag `new-checkout`, on in production, whose off variation is `false`.
json DefaultState() {
  json production{{"on", true},
                  {"offVariation", 1},
                  {"fallthrough", {{"variation", 0}}},
                  {"targets", {{{"values", {"qa-user"}}, {"variation", 0}}}}};
  return json{
      {"flags",
       {{{"key", "new-checkout"},
         {"name", "New checkout"},
         {"variations", {{{"value", true}, {"name", "new"}}, {{"value", false}, {"name", "old"}}}},
         {"environments", {{"production", production}}}}}}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Emulated LaunchDarkly REST API v2 (flags, semantic patch, audit log) on 127.0.0.1"};
  int port = 0;
  std::string state_file;
  std::string token;
  app.add_option("--port", port, "TCP port on 127.0.0.1; 0 picks a free one")
      ->capture_default_str();
  app.add_option("--state", state_file, "JSON state document (see README.md)");
  app.add_option("--token", token, "the one accepted access token (replaces the state's tokens)");
  CLI11_PARSE(app, argc, argv);

  json state = DefaultState();
  if (!state_file.empty()) {
    std::ifstream in(state_file);
    if (!in) {
      std::cerr << "launchdarkly_emulator: cannot read " << state_file << "\n";
      return 2;
    }
    try {
      state = json::parse(in);
    } catch (const json::parse_error& error) {
      std::cerr << "launchdarkly_emulator: " << state_file << ": " << error.what() << "\n";
      return 2;
    }
  }
  if (!token.empty()) {
    state["tokens"] = {{{"token", token},
                        {"name", "cli"},
                        {"member", {{"email", "owner@example.com"}, {"firstName", "Account"}}}}};
  }

  // Block the stop signals before any thread starts, so only sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto emulator = backout::emulators::launchdarkly::Emulator::Create(state);
  if (!emulator) {
    std::cerr << "launchdarkly_emulator: invalid state: " << emulator.error() << "\n";
    return 2;
  }
  if (auto started = (*emulator)->Start(port); !started) {
    std::cerr << "launchdarkly_emulator: " << started.error() << "\n";
    return 1;
  }
  std::printf("%d\n", (*emulator)->port());
  std::fflush(stdout);

  int received = 0;
  sigwait(&signals, &received);
  (*emulator)->Stop();
  return 0;
}
