#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "cli/api_client.h"
#include "cli/json.h"
#include "core/error.h"

namespace backout::cli {

struct JobWaitOptions {
  std::chrono::milliseconds poll_interval{500};  // time between two GET /api/v1/jobs/{id}
  std::chrono::milliseconds timeout{0};          // give up after this long; 0 waits until the end
};

// True when the job will not change any more (its state is final).
bool IsJobFinished(const Json& job);

// True when a finished job reached a good outcome: a rollback that rolled back (or found the
// target already live), a validation that found the service recovered, or another job kind that
// succeeded.
bool IsJobSuccessful(const Json& job);

// One progress line for the terminal, e.g. "[  3.5s] job-4 rollback running (attempt 1): execute".
std::string DescribeJob(const Json& job, double elapsed_seconds);

// Polls GET /api/v1/jobs/{job_id} until the job is finished and returns its last state. Prints a
// progress line to stderr at the start and whenever the state, step or attempt changes. Fails when
// the server cannot be asked or the timeout passes first.
core::Result<Json> WaitForJob(ApiClient& api, std::string_view job_id,
                              const JobWaitOptions& options);

}  // namespace backout::cli
