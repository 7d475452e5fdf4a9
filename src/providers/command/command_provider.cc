#include "providers/command/command_provider.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace backout::providers::command {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

// Variables passed through from the server's environment; everything else is left out.
constexpr std::array<std::string_view, 6> kInheritedVariables = {"PATH",   "HOME", "LANG",
                                                                 "LC_ALL", "TZ",   "TMPDIR"};
constexpr std::string_view kDefaultPath = "/usr/local/bin:/usr/bin:/bin";

// Output kept from `history`, which is parsed whole rather than cut to its tail.
constexpr size_t kHistoryOutputMax = 8 * 1024 * 1024;
// Output kept from `status` and `readiness`, of which only the first line and the end matter.
constexpr size_t kCheckOutputMax = 16 * 1024;
// Characters of stderr quoted in an outcome message; the transcript keeps the whole tail.
constexpr size_t kMessageTailMax = 400;

constexpr std::string_view kConfirmHint =
    "confirm with `backout incident confirm ID --happened|--did-not-happen --reason TEXT`";

std::string FormatLimit(milliseconds limit) {
  if (limit.count() % 1000 == 0) return fmt::format("{}s", limit.count() / 1000);
  return fmt::format("{}ms", limit.count());
}

std::string Trim(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return "";
  size_t end = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(begin, end - begin + 1));
}

std::string FirstLine(std::string_view text) { return Trim(text.substr(0, text.find('\n'))); }

// The end of `text`, trimmed, for quoting in a message.
std::string MessageTail(std::string_view text) {
  std::string trimmed = Trim(text);
  if (trimmed.size() <= kMessageTailMax) return trimmed;

  // Start on a UTF-8 character boundary, so the message stays valid UTF-8 for JSON.
  size_t start = trimmed.size() - kMessageTailMax;
  while (start < trimmed.size() && (static_cast<unsigned char>(trimmed[start]) & 0xC0) == 0x80) {
    ++start;
  }
  return "…" + trimmed.substr(start);
}

bool IsExecutableFile(const std::string& path) {
  std::error_code error;
  return std::filesystem::is_regular_file(path, error) && ::access(path.c_str(), X_OK) == 0;
}

Precondition CheckProgram(std::string_view role, const std::vector<std::string>& argv) {
  Precondition check;
  check.name = fmt::format("{} program executable", role);
  check.satisfied = IsExecutableFile(argv[0]);
  check.detail = check.satisfied ? fmt::format("{} is an executable file", argv[0])
                                 : fmt::format(
                                       "{} is missing or not executable; install the {} "
                                       "program or fix the provider settings",
                                       argv[0], role);
  return check;
}

std::string ActionString(const json& action, std::string_view field) {
  auto it = action.find(field);
  return it != action.end() && it->is_string() ? it->get<std::string>() : "";
}

core::Result<HistoryEntry> ParseHistoryLine(std::string_view line) {
  json object;
  try {
    object = json::parse(line);
  } catch (const json::parse_error& error) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition, "not valid JSON ({})",
                           error.what());
  }
  if (!object.is_object()) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition, "expected a JSON object, got {}",
                           object.type_name());
  }

  HistoryEntry entry;
  auto version = object.find("version");
  if (version == object.end() || !version->is_string() || version->get<std::string>().empty()) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "field 'version' must be a non-empty string");
  }
  entry.version = version->get<std::string>();

  auto time = object.find("time");
  if (time == object.end() || !time->is_string()) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "field 'time' must be an RFC 3339 string");
  }
  auto parsed_time = core::ParseTime(time->get<std::string>());
  if (!parsed_time) {
    return std::unexpected(parsed_time.error().WithContext("field 'time'"));
  }
  entry.time = *parsed_time;

  auto actor = object.find("actor");
  if (actor != object.end() && !actor->is_null()) {
    if (!actor->is_string()) {
      return core::MakeError(core::ErrorCode::kFailedPrecondition,
                             "field 'actor' must be a string");
    }
    entry.actor = actor->get<std::string>();
  }

  auto kind = object.find("kind");
  if (kind != object.end() && !kind->is_null()) {
    if (*kind == "rollback") {
      entry.kind = HistoryKind::kRollback;
    } else if (*kind != "deploy") {
      return core::MakeError(core::ErrorCode::kFailedPrecondition,
                             "field 'kind' must be deploy or rollback, got {}", kind->dump());
    }
  }

  auto details = object.find("details");
  if (details != object.end() && details->is_object()) entry.details = *details;
  for (const auto& [field, value] : object.items()) {
    if (field != "version" && field != "time" && field != "actor" && field != "kind" &&
        field != "details") {
      entry.details[field] = value;
    }
  }
  return entry;
}

}  // namespace

core::Result<std::unique_ptr<Provider>> CommandProvider::Create(std::string_view service,
                                                                const json& settings,
                                                                const SecretValues& secrets,
                                                                core::Clock& clock) {
  if (service.empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "command provider: the service name is empty");
  }
  auto parsed = ParseCommandSettings(service, settings, secrets);
  if (!parsed) return std::unexpected(parsed.error());

  std::vector<std::string> inherited;
  for (std::string_view name : kInheritedVariables) {
    const char* value = std::getenv(std::string(name).c_str());
    if (value != nullptr) {
      inherited.push_back(fmt::format("{}={}", name, value));
    } else if (name == "PATH") {
      inherited.push_back(fmt::format("PATH={}", kDefaultPath));
    }
  }
  return std::unique_ptr<Provider>(
      new CommandProvider(std::string(service), std::move(*parsed), std::move(inherited), clock));
}

CommandProvider::CommandProvider(std::string service, CommandSettings settings,
                                 std::vector<std::string> inherited_env, core::Clock& clock)
    : service_(std::move(service)),
      settings_(std::move(settings)),
      inherited_env_(std::move(inherited_env)),
      clock_(clock) {}

ProviderCapabilities CommandProvider::Capabilities() const {
  return ProviderCapabilities{
      .live_state = !settings_.status.empty(),
      .history = !settings_.history.empty(),
      .readiness = !settings_.readiness.empty() || !settings_.status.empty(),
  };
}

std::vector<std::string> CommandProvider::BaseEnv() const {
  std::vector<std::string> env = inherited_env_;
  env.push_back(fmt::format("BACKOUT_SERVICE={}", service_));
  for (const auto& [name, value] : settings_.secret_values) {
    env.push_back(fmt::format("{}={}", name, value));
  }
  return env;
}

std::string CommandProvider::ScrubSecrets(std::string text) const {
  auto replace_all = [&text](std::string_view needle, std::string_view replacement) {
    if (needle.empty()) return;
    for (size_t at = text.find(needle); at != std::string::npos;
         at = text.find(needle, at + replacement.size())) {
      text.replace(at, needle.size(), replacement);
    }
  };

  for (const auto& [name, value] : settings_.secret_values) {
    std::string marker = fmt::format("[secret {}]", name);
    replace_all(value, marker);

    // A multi-line secret (a PEM key) may reach the output one line at a time.
    if (value.find('\n') == std::string::npos) continue;
    size_t begin = 0;
    while (begin < value.size()) {
      size_t end = value.find('\n', begin);
      if (end == std::string::npos) end = value.size();
      std::string line = Trim(std::string_view(value).substr(begin, end - begin));
      if (line.size() >= 8) replace_all(line, marker);
      begin = end + 1;
    }
  }
  return text;
}

std::string CommandProvider::VisibleText(const CapturedOutput& output) const {
  std::string text = output.tail;

  // A cut tail starts mid-line, and the cut may fall inside a secret that would then not be
  // recognized. The partial first line is dropped for both reasons.
  if (output.total_bytes > output.tail.size()) {
    size_t newline = text.find('\n');
    text = newline == std::string::npos ? "" : text.substr(newline + 1);
  }
  return ScrubSecrets(std::move(text));
}

void CommandProvider::AddOutput(Transcript& transcript, std::string_view stream,
                                const CapturedOutput& output) const {
  std::string text = VisibleText(output);
  bool truncated = output.total_bytes > output.tail.size();

  std::string summary = truncated ? fmt::format("{}: {} bytes, last {} bytes kept", stream,
                                                output.total_bytes, text.size())
                                  : fmt::format("{}: {} bytes", stream, output.total_bytes);
  transcript.Add(clock_.Now(), TranscriptKind::kOutput, std::move(summary),
                 json{{"stream", stream},
                      {"total_bytes", output.total_bytes},
                      {"truncated", truncated},
                      {"text", text}});
}

core::Result<ProcessRun> CommandProvider::RunCheck(std::string_view name,
                                                   const std::vector<std::string>& argv,
                                                   std::vector<std::string> extra_env,
                                                   size_t output_max) const {
  ProcessSpec spec;
  spec.argv = argv;
  spec.env = BaseEnv();
  spec.env.insert(spec.env.end(), extra_env.begin(), extra_env.end());
  spec.working_dir = settings_.working_dir;
  spec.output_dir = settings_.output_dir;
  ProcessLimits limits{settings_.check_timeout, settings_.kill_grace, output_max};

  auto run = RunProcess(spec, limits, {}, nullptr);
  if (!run) {
    return core::MakeError(core::ErrorCode::kUnavailable, "service {}: {} command failed: {}",
                           service_, name, run.error().message);
  }
  if (run->timed_out) {
    return core::MakeError(core::ErrorCode::kTimeout,
                           "service {}: {} command {} timed out after {}; raise check_timeout or "
                           "make the command faster",
                           service_, name, argv[0], FormatLimit(settings_.check_timeout));
  }
  return run;
}

core::Result<LiveState> CommandProvider::ReadLiveState() const {
  if (settings_.status.empty()) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "service {}: the command provider has no status command, so the live "
                           "version cannot be read; add `status` to the provider settings",
                           service_);
  }

  auto run = RunCheck("status", settings_.status, {}, kCheckOutputMax);
  if (!run) return std::unexpected(run.error());
  if (!run->exit.Succeeded()) {
    return core::MakeError(
        core::ErrorCode::kUnavailable, "service {}: status command {} ended with {}: {}", service_,
        settings_.status[0], run->exit.Describe(), MessageTail(VisibleText(run->stderr_output)));
  }
  if (run->stdout_output.total_bytes > run->stdout_output.tail.size()) {
    return core::MakeError(core::ErrorCode::kUnavailable,
                           "service {}: status command {} printed {} bytes, more than the {} KiB "
                           "allowed; print only the version",
                           service_, settings_.status[0], run->stdout_output.total_bytes,
                           kCheckOutputMax / 1024);
  }
  std::string version = FirstLine(ScrubSecrets(run->stdout_output.tail));
  if (version.empty()) {
    return core::MakeError(core::ErrorCode::kUnavailable,
                           "service {}: status command {} printed no version on the first line "
                           "of its output",
                           service_, settings_.status[0]);
  }

  LiveState state;
  state.version = std::move(version);
  state.observed_at = clock_.Now();
  state.details = json{{"source", "status command"},
                       {"argv", settings_.status},
                       {"duration_ms", run->duration.count()}};
  return state;
}

core::Result<std::vector<HistoryEntry>> CommandProvider::History(core::Time since) const {
  if (settings_.history.empty()) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "service {}: the command provider has no history command, so the "
                           "tool's own history cannot be read; add `history` to the provider "
                           "settings",
                           service_);
  }

  auto run = RunCheck("history", settings_.history,
                      {fmt::format("BACKOUT_HISTORY_SINCE={}", core::FormatTime(since))},
                      kHistoryOutputMax);
  if (!run) return std::unexpected(run.error());
  const std::string& program = settings_.history[0];
  if (!run->exit.Succeeded()) {
    return core::MakeError(core::ErrorCode::kUnavailable,
                           "service {}: history command {} ended with {}: {}", service_, program,
                           run->exit.Describe(), MessageTail(VisibleText(run->stderr_output)));
  }
  if (run->stdout_output.total_bytes > run->stdout_output.tail.size()) {
    return core::MakeError(core::ErrorCode::kFailedPrecondition,
                           "service {}: history command {} printed {} bytes, more than the {} MiB "
                           "allowed; print only entries at or after BACKOUT_HISTORY_SINCE",
                           service_, program, run->stdout_output.total_bytes,
                           kHistoryOutputMax / (1024 * 1024));
  }

  std::vector<HistoryEntry> entries;
  std::string_view output = run->stdout_output.tail;
  size_t line_number = 0;
  while (!output.empty()) {
    ++line_number;
    size_t end = output.find('\n');
    std::string_view line = output.substr(0, end);
    output = end == std::string_view::npos ? std::string_view() : output.substr(end + 1);
    if (Trim(line).empty()) continue;

    auto entry = ParseHistoryLine(line);
    if (!entry) {
      return core::MakeError(core::ErrorCode::kFailedPrecondition,
                             "service {}: history command {} output line {}: {}; each line must "
                             "be a JSON object with version, time and actor",
                             service_, program, line_number, ScrubSecrets(entry.error().message));
    }
    if (entry->time >= since) entries.push_back(std::move(*entry));
  }
  std::stable_sort(entries.begin(), entries.end(),
                   [](const HistoryEntry& a, const HistoryEntry& b) { return a.time < b.time; });
  return entries;
}

core::Result<std::vector<Precondition>> CommandProvider::Preconditions() const {
  std::vector<Precondition> checks;
  checks.push_back(CheckProgram("run", settings_.run));
  if (!settings_.status.empty()) checks.push_back(CheckProgram("status", settings_.status));
  if (!settings_.history.empty()) checks.push_back(CheckProgram("history", settings_.history));
  if (!settings_.readiness.empty()) {
    checks.push_back(CheckProgram("readiness", settings_.readiness));
  }

  std::error_code error;
  Precondition working_dir{"working folder exists", false, ""};
  working_dir.satisfied = std::filesystem::is_directory(settings_.working_dir, error);
  working_dir.detail =
      working_dir.satisfied
          ? fmt::format("{} is a folder", settings_.working_dir)
          : fmt::format("{} is not a folder; create it or fix working_dir", settings_.working_dir);
  checks.push_back(std::move(working_dir));

  Precondition output_dir{"output folder writable", false, ""};
  output_dir.satisfied = ::access(settings_.output_dir.c_str(), W_OK | X_OK) == 0;
  output_dir.detail = output_dir.satisfied
                          ? fmt::format("{} is writable", settings_.output_dir.string())
                          : fmt::format("{} is not a writable folder; fix output_dir",
                                        settings_.output_dir.string());
  checks.push_back(std::move(output_dir));

  if (!settings_.status.empty()) {
    auto live = ReadLiveState();
    checks.push_back(Precondition{
        "live version readable", live.has_value(),
        live ? fmt::format("status reports version {}", live->version) : live.error().message});
  }
  return checks;
}

json CommandProvider::BuildAction(std::string_view target, std::string_view from_version,
                                  bool noop) const {
  json action{
      {"type", noop ? "noop" : "run"},
      {"target_version", target},
      {"from_version", from_version.empty() ? json(nullptr) : json(from_version)},
      {"argv", settings_.run},
      {"working_dir", settings_.working_dir},
      {"env", {{"BACKOUT_SERVICE", service_}, {"BACKOUT_TARGET_VERSION", target}}},
      {"env_from_execution",
       {"BACKOUT_APPROVER", "BACKOUT_EXECUTOR", "BACKOUT_IDEMPOTENCY_KEY", "BACKOUT_INCIDENT_ID"}},
      {"secret_env", settings_.secret_names},
      {"timeout_ms", settings_.timeout.count()},
      {"kill_grace_ms", settings_.kill_grace.count()},
      {"read_back", settings_.status.empty() ? json(nullptr) : json(settings_.status)}};
  return action;
}

core::Result<Plan> CommandProvider::MakePlan(std::string_view target_version) const {
  if (target_version.empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: the target version is empty; give the version to roll "
                           "back to",
                           service_);
  }
  bool has_control = std::any_of(target_version.begin(), target_version.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7F;
  });
  if (has_control) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: the target version contains control characters; give "
                           "the version as the tool prints it",
                           service_);
  }

  std::string from_version;
  if (!settings_.status.empty()) {
    auto live = ReadLiveState();
    if (!live) return std::unexpected(live.error().WithContext("cannot plan the rollback"));
    from_version = live->version;
  }
  bool noop = !from_version.empty() && from_version == target_version;

  Plan plan;
  plan.provider_kind = "command";
  plan.service = service_;
  plan.target_version = std::string(target_version);
  plan.noop = noop;
  plan.action = BuildAction(target_version, from_version, noop);
  plan.digest = PlanDigest(plan.action);
  if (noop) {
    plan.summary =
        fmt::format("nothing to run: {} already runs version {}", service_, target_version);
  } else {
    plan.summary = fmt::format("run {} with BACKOUT_TARGET_VERSION={} (live version: {})",
                               settings_.run[0], target_version,
                               from_version.empty() ? "unknown, no status command" : from_version);
  }
  return plan;
}

core::Result<void> CommandProvider::ValidatePlan(const Plan& plan) const {
  return CheckPlanOrigin(plan, "command", service_);
}

core::Result<ExecutionResult> CommandProvider::Execute(const Plan& plan,
                                                       std::string_view idempotency_key,
                                                       const ExecutionContext& context) const {
  if (auto valid = ValidatePlan(plan); !valid) return std::unexpected(valid.error());
  if (idempotency_key.empty()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "service {}: the idempotency key is empty; pass the job's key",
                           service_);
  }

  ExecutionResult result;
  result.target_version = plan.target_version;
  result.from_version = ActionString(plan.action, "from_version");
  result.started_at = clock_.Now();
  auto finish = [&](RollbackOutcome outcome, std::string message) {
    result.outcome = outcome;
    result.message = std::move(message);
    result.finished_at = clock_.Now();
    spdlog::info("provider.command: service={} incident={} outcome={} message=\"{}\"", service_,
                 context.incident_id, core::RollbackOutcomeName(outcome), result.message);
    return result;
  };

  if (plan.noop) {
    result.live_version = result.from_version;
    return finish(
        RollbackOutcome::kSkippedNoop,
        fmt::format("version {} was already live when planned; nothing ran", plan.target_version));
  }
  if (BuildAction(plan.target_version, result.from_version, false) != plan.action) {
    return finish(RollbackOutcome::kPreconditionFailed,
                  "the configured runbook changed since the plan was made; plan again and decide "
                  "on the new plan");
  }

  // Step 1: start the runbook, and let the job commit its identity before it runs.
  ProcessSpec spec;
  spec.argv = settings_.run;
  spec.env = BaseEnv();
  json visible_env{{"BACKOUT_SERVICE", service_},
                   {"BACKOUT_TARGET_VERSION", plan.target_version},
                   {"BACKOUT_INCIDENT_ID", context.incident_id},
                   {"BACKOUT_EXECUTOR", context.executor},
                   {"BACKOUT_APPROVER", context.approver},
                   {"BACKOUT_IDEMPOTENCY_KEY", idempotency_key}};
  for (const auto& [name, value] : visible_env.items()) {
    if (name != "BACKOUT_SERVICE")
      spec.env.push_back(fmt::format("{}={}", name, value.get<std::string>()));
  }
  spec.working_dir = settings_.working_dir;
  spec.output_dir = settings_.output_dir;
  ProcessLimits limits{settings_.timeout, settings_.kill_grace, 64 * 1024};

  bool start_not_recorded = false;
  BeforeStart before_start = [&](const ProcessIdentity& identity) -> core::Result<void> {
    StartedAction started{clock_.Now(), identity, json::object()};
    result.transcript.Add(started.started_at, TranscriptKind::kProcess,
                          fmt::format("started {} as pid {}", settings_.run[0], identity.pid),
                          json{{"argv", settings_.run},
                               {"env", visible_env},
                               {"secret_env", settings_.secret_names},
                               {"working_dir", settings_.working_dir},
                               {"pid", identity.pid},
                               {"start_ticks", identity.start_ticks},
                               {"timeout_ms", settings_.timeout.count()}});
    if (context.on_started) {
      auto recorded = context.on_started(started);
      if (!recorded) {
        start_not_recorded = true;
        return std::unexpected(recorded.error());
      }
    }
    result.started = started;
    spdlog::info("provider.command: service={} incident={} started {} pid={} start_ticks={}",
                 service_, context.incident_id, settings_.run[0], identity.pid,
                 identity.start_ticks);
    return {};
  };

  auto run = RunProcess(spec, limits, context.stop, before_start);
  if (!run) {
    std::string message =
        start_not_recorded
            ? fmt::format(
                  "could not record the runbook's start, so it was stopped before it "
                  "ran: {}",
                  run.error().message)
            : fmt::format("the runbook did not start: {}", run.error().message);
    result.transcript.Add(clock_.Now(), TranscriptKind::kProcess, message);
    spdlog::warn("provider.command: service={} incident={} {}", service_, context.incident_id,
                 message);
    return finish(RollbackOutcome::kFailed, std::move(message));
  }

  // Step 2: record how it ended and what it printed.
  result.details = json{{"pid", run->identity.pid},     {"start_ticks", run->identity.start_ticks},
                        {"exit", run->exit.Describe()}, {"exit_code", run->exit.code},
                        {"signal", run->exit.signal},   {"duration_ms", run->duration.count()},
                        {"timed_out", run->timed_out},  {"stopped", run->stopped}};
  result.transcript.Add(clock_.Now(), TranscriptKind::kProcess,
                        fmt::format("pid {} ended with {} after {} ms", run->identity.pid,
                                    run->exit.Describe(), run->duration.count()),
                        result.details);
  AddOutput(result.transcript, "stdout", run->stdout_output);
  AddOutput(result.transcript, "stderr", run->stderr_output);
  std::string stderr_tail = MessageTail(VisibleText(run->stderr_output));

  // Step 3: choose the outcome.
  if (run->timed_out) {
    spdlog::warn("provider.command: service={} incident={} pid={} timed out after {}", service_,
                 context.incident_id, run->identity.pid, FormatLimit(settings_.timeout));
    return finish(RollbackOutcome::kFailed, fmt::format("timed out after {}; process group killed",
                                                        FormatLimit(settings_.timeout)));
  }
  if (run->stopped) {
    ConcludeFromStatus(result, "the runbook was stopped on request and its process group killed");
    return finish(result.outcome, result.message);
  }
  if (run->exit.known && !run->exit.Succeeded()) {
    return finish(
        RollbackOutcome::kFailed,
        stderr_tail.empty()
            ? fmt::format("the runbook ended with {}", run->exit.Describe())
            : fmt::format("the runbook ended with {}: {}", run->exit.Describe(), stderr_tail));
  }
  if (settings_.status.empty() && run->exit.Succeeded()) {
    return finish(RollbackOutcome::kRolledBack,
                  "the runbook exited with code 0; no status command: version not read back");
  }
  ConcludeFromStatus(result, run->exit.known ? "the runbook exited with code 0"
                                             : "the runbook ended with an unknown exit status");
  if (run->exit.Succeeded() && result.outcome == RollbackOutcome::kInterrupted) {
    // The runbook reported success but the read-back failed: the tool did not confirm it.
    result.outcome = RollbackOutcome::kFailed;
  }
  return finish(result.outcome, result.message);
}

void CommandProvider::ConcludeFromStatus(ExecutionResult& result,
                                         std::string_view what_happened) const {
  if (settings_.status.empty()) {
    result.outcome = RollbackOutcome::kInterrupted;
    result.message = fmt::format(
        "{}; without a status command Backout cannot tell whether the "
        "rollback happened; {}",
        what_happened, kConfirmHint);
    return;
  }

  auto live = ReadLiveState();
  if (!live) {
    result.transcript.Add(clock_.Now(), TranscriptKind::kResponse, "status command failed",
                          json{{"argv", settings_.status}, {"error", live.error().message}});
    result.outcome = RollbackOutcome::kInterrupted;
    result.message = fmt::format("{}; the version could not be read back: {}; {}", what_happened,
                                 live.error().message, kConfirmHint);
    return;
  }

  result.live_version = live->version;
  result.transcript.Add(live->observed_at, TranscriptKind::kResponse,
                        fmt::format("status reports version {}", live->version),
                        json{{"argv", settings_.status}, {"version", live->version}});
  if (live->version == result.target_version) {
    result.outcome = RollbackOutcome::kRolledBack;
    result.message =
        fmt::format("{}; status reads back the target version {}", what_happened, live->version);
  } else {
    result.outcome = RollbackOutcome::kFailed;
    result.message = fmt::format("{}, but status reads version {}, not the target {}",
                                 what_happened, live->version, result.target_version);
  }
}

core::Result<ExecutionResult> CommandProvider::Resume(const ResumeRequest& request,
                                                      const ExecutionContext& context) const {
  const Plan& plan = request.plan;
  if (auto valid = ValidatePlan(plan); !valid) return std::unexpected(valid.error());

  ExecutionResult result;
  result.target_version = plan.target_version;
  result.from_version = ActionString(plan.action, "from_version");
  result.started_at = request.started ? request.started->started_at : clock_.Now();
  result.started = request.started;
  auto finish = [&](RollbackOutcome outcome, std::string message) {
    result.outcome = outcome;
    result.message = std::move(message);
    result.finished_at = clock_.Now();
    spdlog::info("provider.command: service={} incident={} resumed outcome={} message=\"{}\"",
                 service_, context.incident_id, core::RollbackOutcomeName(outcome), result.message);
    return result;
  };

  if (plan.noop) {
    result.live_version = result.from_version;
    return finish(
        RollbackOutcome::kSkippedNoop,
        fmt::format("version {} was already live when planned; nothing ran", plan.target_version));
  }
  if (!request.started || !request.started->process) {
    return finish(RollbackOutcome::kFailed,
                  "the runbook never ran: the server stopped before the runbook's start was "
                  "recorded, and a runbook runs only after that record is committed; roll back "
                  "again");
  }

  // Step 1: wait for the runbook if it still runs. It is no longer this server's child, so its
  // exit status is lost and the outcome rests on `status`.
  const ProcessIdentity& identity = *request.started->process;
  std::string what_happened;
  if (IsRunning(identity)) {
    result.transcript.Add(clock_.Now(), TranscriptKind::kProcess,
                          fmt::format("adopted running pid {}", identity.pid),
                          json{{"pid", identity.pid}, {"start_ticks", identity.start_ticks}});
    spdlog::info("provider.command: service={} incident={} waiting for adopted pid={}", service_,
                 context.incident_id, identity.pid);

    core::Duration left = request.started->started_at + settings_.timeout - clock_.Now();
    auto deadline = std::chrono::steady_clock::now() + std::max(left, core::Duration::zero());
    WaitEnd end = WaitUntilGone(identity, deadline, context.stop);
    if (end != WaitEnd::kGone) TerminateGroup(identity, settings_.kill_grace);

    if (end == WaitEnd::kDeadline) {
      result.transcript.Add(clock_.Now(), TranscriptKind::kProcess,
                            fmt::format("pid {} timed out; process group killed", identity.pid));
      ConcludeFromStatus(result, fmt::format("the adopted runbook timed out after {}; process "
                                             "group killed",
                                             FormatLimit(settings_.timeout)));
      if (result.outcome == RollbackOutcome::kRolledBack)
        return finish(result.outcome, result.message);
      return finish(RollbackOutcome::kFailed, result.message);
    }
    what_happened = end == WaitEnd::kStopped
                        ? "the adopted runbook was stopped on request and its process group killed"
                        : "the adopted runbook ended";
    result.transcript.Add(clock_.Now(), TranscriptKind::kProcess,
                          fmt::format("pid {}: {}", identity.pid, what_happened));
  } else {
    what_happened =
        fmt::format("the runbook (pid {}) had ended while the server was down", identity.pid);
    result.transcript.Add(clock_.Now(), TranscriptKind::kProcess,
                          fmt::format("pid {} with start ticks {} no longer runs", identity.pid,
                                      identity.start_ticks),
                          json{{"pid", identity.pid}, {"start_ticks", identity.start_ticks}});
  }

  // Step 2: only the tool's own status can tell whether the rollback happened.
  ConcludeFromStatus(result, what_happened);
  return finish(result.outcome, result.message);
}

core::Result<Readiness> CommandProvider::CheckReadiness() const {
  if (!settings_.readiness.empty()) {
    auto run = RunCheck("readiness", settings_.readiness, {}, kCheckOutputMax);
    if (!run) return std::unexpected(run.error());
    if (run->exit.Succeeded()) {
      std::string first_line = FirstLine(VisibleText(run->stdout_output));
      return Readiness{true, first_line.empty() ? "readiness command exited with code 0"
                                                : fmt::format("readiness command: {}", first_line)};
    }
    std::string tail = MessageTail(VisibleText(run->stderr_output));
    return Readiness{false, fmt::format("readiness command ended with {}{}{}", run->exit.Describe(),
                                        tail.empty() ? "" : ": ", tail)};
  }

  if (!settings_.status.empty()) {
    auto live = ReadLiveState();
    if (!live) {
      if (live.error().code == core::ErrorCode::kUnavailable) {
        return Readiness{false, live.error().message};
      }
      return std::unexpected(live.error());
    }
    return Readiness{true, fmt::format("status command reports version {}", live->version)};
  }

  return core::MakeError(core::ErrorCode::kFailedPrecondition,
                         "service {}: the command provider has neither a readiness nor a status "
                         "command, so readiness cannot be evaluated; add `readiness` or `status`",
                         service_);
}

core::Result<ToolRecord> CommandProvider::ReadBack(const ExecutionResult& execution) const {
  auto live = ReadLiveState();
  if (!live) return std::unexpected(live.error().WithContext("cannot read back the rollback"));
  return ToolRecord{live->observed_at, live->version,
                    json{{"source", "status command"},
                         {"argv", settings_.status},
                         {"matches_target", live->version == execution.target_version}}};
}

}  // namespace backout::providers::command
