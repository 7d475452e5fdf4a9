#include "cli/job_wait.h"

#include <algorithm>
#include <array>
#include <thread>

#include <fmt/format.h>

#include "cli/client_command.h"
#include "cli/output.h"

namespace backout::cli {
namespace {

// Job states that can still change. Any other state is final.
constexpr std::array<std::string_view, 5> kActiveStates = {"queued", "pending", "running", "leased",
                                                           "retrying"};

// Outcomes that count as success for --wait: the rollback happened (or was not needed) and the
// validation found the service recovered.
constexpr std::array<std::string_view, 3> kGoodOutcomes = {"rolled_back", "skipped_noop",
                                                           "recovered"};

// States of a finished job that count as success when the job has no outcome.
constexpr std::array<std::string_view, 4> kGoodStates = {"succeeded", "done", "completed",
                                                         "finished"};

// The member as text: strings as they are, numbers and objects as in a table cell, "" when absent.
std::string FieldText(const Json& object, const char* key) {
  if (!object.is_object()) {
    return "";
  }
  auto found = object.find(key);
  if (found == object.end() || found->is_null()) {
    return "";
  }
  return found->is_string() ? found->get<std::string>() : FormatCell(*found);
}

bool Contains(auto& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// The step a job reached: its `progress` when that is text, or the `step` inside a progress
// object, or the object itself in compact form.
std::string ProgressText(const Json& job) {
  if (!job.is_object() || !job.contains("progress")) {
    return "";
  }
  const Json& progress = job["progress"];
  if (progress.is_object() && progress.contains("step") && progress["step"].is_string()) {
    return progress["step"].get<std::string>();
  }
  if (progress.is_object() && progress.empty()) {
    return "";
  }
  return FieldText(job, "progress");
}

// What a progress line shows; a new line is printed whenever it changes.
std::string ProgressKey(const Json& job) {
  return fmt::format("{}|{}|{}|{}", FieldText(job, "state"), ProgressText(job),
                     FieldText(job, "attempts"), FieldText(job, "outcome"));
}

}  // namespace

bool IsJobFinished(const Json& job) {
  const std::string state = FieldText(job, "state");
  return !state.empty() && !Contains(kActiveStates, state);
}

bool IsJobSuccessful(const Json& job) {
  if (!IsJobFinished(job)) {
    return false;
  }
  const std::string outcome = FieldText(job, "outcome");
  if (!outcome.empty()) {
    return Contains(kGoodOutcomes, outcome);
  }
  return Contains(kGoodStates, FieldText(job, "state"));
}

std::string DescribeJob(const Json& job, double elapsed_seconds) {
  std::string line = fmt::format("[{:6.1f}s] {} {} {}", elapsed_seconds, FieldText(job, "id"),
                                 FieldText(job, "kind"), FieldText(job, "state"));
  const std::string attempts = FieldText(job, "attempts");
  if (!attempts.empty() && attempts != "0" && attempts != "1") {
    line += fmt::format(" (attempt {})", attempts);
  }
  if (const std::string progress = ProgressText(job); !progress.empty()) {
    line += ": " + progress;
  }
  if (const std::string outcome = FieldText(job, "outcome"); !outcome.empty()) {
    line += fmt::format(", outcome {}", outcome);
  }
  if (const std::string message = FieldText(job, "message"); !message.empty()) {
    line += fmt::format(" ({})", message);
  }
  return line + "\n";
}

core::Result<Json> WaitForJob(ApiClient& api, std::string_view job_id,
                              const JobWaitOptions& options) {
  // A monotonic clock measures the elapsed time; nothing here needs the time of day.
  const auto start = std::chrono::steady_clock::now();
  const std::string path = "/api/v1/jobs/" + EncodeUrlComponent(job_id);
  std::string last_key;
  while (true) {
    auto job = api.Get(path);
    if (!job) {
      return std::unexpected(job.error().WithContext(fmt::format("waiting for job {}", job_id)));
    }

    const auto elapsed = std::chrono::steady_clock::now() - start;
    const double seconds = std::chrono::duration<double>(elapsed).count();
    if (const std::string key = ProgressKey(*job); key != last_key) {
      PrintNote(DescribeJob(*job, seconds));
      last_key = key;
    }
    if (IsJobFinished(*job)) {
      return *job;
    }

    if (options.timeout.count() > 0 && elapsed >= options.timeout) {
      return core::MakeError(core::ErrorCode::kTimeout,
                             "job {} still {} after {:.0f}s: it keeps running on the server; "
                             "follow it with `backout incident show`",
                             job_id, FieldText(*job, "state"), seconds);
    }
    std::this_thread::sleep_for(options.poll_interval);
  }
}

}  // namespace backout::cli
