#pragma once

// Helpers shared by the checks module's tests.

#include <memory>

#include <gtest/gtest.h>

#include "checks/check.h"
#include "core/clock.h"
#include "http/client.h"

namespace backout::checks::testing {

inline std::unique_ptr<http::Client> MakeHttpClient() {
  http::ClientOptions options;
  options.retry.max_attempts = 1;
  options.sleep = [](std::chrono::milliseconds) {};
  auto client = http::Client::Create(std::move(options));
  EXPECT_TRUE(client) << (client ? "" : client.error().message);
  return client ? std::move(*client) : nullptr;
}

// A context on a ManualClock whose waits advance the clock instead of sleeping.
inline CheckContext ManualContext(core::ManualClock& clock, http::Client* client) {
  CheckContext context;
  context.incident_id = "INC-1";
  context.service = "web";
  context.rollback_finished_at = clock.Now() - std::chrono::seconds(1);
  context.change_at = clock.Now() - std::chrono::minutes(10);
  context.clock = &clock;
  context.http = client;
  context.sleep = [&clock](std::chrono::milliseconds delay) {
    clock.Advance(std::chrono::duration_cast<core::Duration>(delay));
  };
  return context;
}

}  // namespace backout::checks::testing
