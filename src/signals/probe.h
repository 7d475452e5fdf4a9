#pragma once

// HTTP probes: one request to a service's endpoint, compared with the expected status.

#include <chrono>
#include <string>

#include "http/client.h"
#include "signals/prometheus.h"

namespace backout::signals {

struct ProbeSpec {
  std::string name;
  std::string url;  // http:// or https://
  std::string method = "GET";
  int expected_status = 200;
  std::chrono::milliseconds timeout{5000};
};

// Sends the probe's request once. Firing when the status differs from the expected one or when
// no response arrives (refused, reset or timed out): the endpoint is the service itself, so
// silence is a failure. kUnknown only for a probe that cannot be sent, such as a bad URL.
ConditionResult RunProbe(http::Client& client, const ProbeSpec& probe);

}  // namespace backout::signals
