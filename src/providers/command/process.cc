#include "providers/command/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

namespace backout::providers::command {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// Report the child writes to the report pipe when chdir or exec fails, before its program runs.
struct ChildFailure {
  int stage = 0;  // kStageChdir or kStageExec
  int error = 0;  // errno
};
constexpr int kStageChdir = 1;
constexpr int kStageExec = 2;

// Exit code of a child whose start was cancelled before it ran anything.
constexpr int kCancelledExitCode = 125;

// A file descriptor closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() { Reset(); }

  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

core::Error SystemError(std::string_view what, int error) {
  return core::Error{core::ErrorCode::kInternal,
                     fmt::format("{} failed: {}", what, std::strerror(error))};
}

// Moves `fd` to a number of at least 3, so that dup2 onto 0, 1 and 2 in the child cannot
// overwrite another descriptor the child still needs. The result is close-on-exec.
core::Result<Fd> AboveStdio(Fd fd) {
  if (fd.get() > 2) return fd;
  int raised = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (raised < 0) return std::unexpected(SystemError("fcntl(F_DUPFD_CLOEXEC)", errno));
  return Fd(raised);
}

// The start gate is a socket pair rather than a pipe so the parent can write with MSG_NOSIGNAL:
// a child that died first must not raise SIGPIPE in the server.
core::Result<std::pair<Fd, Fd>> MakeStartGate() {
  std::array<int, 2> fds{};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds.data()) != 0) {
    return std::unexpected(SystemError("socketpair", errno));
  }
  Fd child_end(fds[0]);
  Fd parent_end(fds[1]);
  auto child_raised = AboveStdio(std::move(child_end));
  if (!child_raised) return std::unexpected(child_raised.error());
  auto parent_raised = AboveStdio(std::move(parent_end));
  if (!parent_raised) return std::unexpected(parent_raised.error());
  return std::make_pair(std::move(*child_raised), std::move(*parent_raised));
}

core::Result<std::pair<Fd, Fd>> MakePipe() {
  std::array<int, 2> fds{};
  if (::pipe2(fds.data(), O_CLOEXEC) != 0) return std::unexpected(SystemError("pipe2", errno));
  Fd read_end(fds[0]);
  Fd write_end(fds[1]);
  auto read_raised = AboveStdio(std::move(read_end));
  if (!read_raised) return std::unexpected(read_raised.error());
  auto write_raised = AboveStdio(std::move(write_end));
  if (!write_raised) return std::unexpected(write_raised.error());
  return std::make_pair(std::move(*read_raised), std::move(*write_raised));
}

// Creates a file that exists only through its descriptor: it vanishes when the last process
// holding it closes it, so output never outlives the run.
core::Result<Fd> MakeUnlinkedFile(const std::filesystem::path& folder) {
  std::string pattern = (folder / "backout-output-XXXXXX").string();
  int fd = ::mkostemp(pattern.data(), O_CLOEXEC);
  if (fd < 0) {
    return core::MakeError(core::ErrorCode::kUnavailable,
                           "could not create an output file in {}: {}; set output_dir to a "
                           "writable folder",
                           folder.string(), std::strerror(errno));
  }
  ::unlink(pattern.c_str());
  return AboveStdio(Fd(fd));
}

// Replaces every byte sequence that is not valid UTF-8 with U+FFFD, so output can go into JSON.
std::string SanitizeUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    unsigned char lead = static_cast<unsigned char>(bytes[i]);
    size_t length = 0;
    uint32_t min_code = 0;
    if (lead < 0x80) {
      length = 1;
    } else if ((lead & 0xE0) == 0xC0) {
      length = 2;
      min_code = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3;
      min_code = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4;
      min_code = 0x10000;
    }

    bool valid = length > 0 && i + length <= bytes.size();
    uint32_t code = length == 1 ? lead : lead & (0x7F >> length);
    for (size_t k = 1; valid && k < length; ++k) {
      unsigned char next = static_cast<unsigned char>(bytes[i + k]);
      if ((next & 0xC0) != 0x80) valid = false;
      code = (code << 6) | (next & 0x3F);
    }
    if (valid && length > 1) {
      valid = code >= min_code && code <= 0x10FFFF && (code < 0xD800 || code > 0xDFFF);
    }

    if (valid) {
      out.append(bytes.substr(i, length));
      i += length;
    } else {
      out.append("\xEF\xBF\xBD");
      i += 1;
    }
  }
  return out;
}

CapturedOutput ReadTail(int fd, size_t max_bytes) {
  CapturedOutput captured;
  struct stat info {};
  if (::fstat(fd, &info) != 0) return captured;
  captured.total_bytes = static_cast<uint64_t>(info.st_size);

  uint64_t length = std::min<uint64_t>(captured.total_bytes, max_bytes);
  std::string bytes(length, '\0');
  off_t offset = static_cast<off_t>(captured.total_bytes - length);
  size_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd, bytes.data() + done, length - done, offset + done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  bytes.resize(done);
  captured.tail = SanitizeUtf8(bytes);
  return captured;
}

ExitStatus DecodeWaitStatus(int status) {
  ExitStatus exit;
  exit.known = true;
  if (WIFEXITED(status)) {
    exit.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    exit.signal = WTERMSIG(status);
  }
  return exit;
}

// Collects the child's exit status without blocking. Returns true once the child is gone. When
// SIGCHLD is ignored the kernel reaps children itself and waitpid fails with ECHILD: the child is
// then gone with an unknown status.
bool TryReap(pid_t pid, ExitStatus& exit) {
  while (true) {
    int status = 0;
    pid_t result = ::waitpid(pid, &status, WNOHANG);
    if (result == pid) {
      exit = DecodeWaitStatus(status);
      return true;
    }
    if (result == 0) return false;
    if (errno == EINTR) continue;
    exit = ExitStatus{};
    return true;
  }
}

void ReapBlocking(pid_t pid, ExitStatus& exit) {
  while (true) {
    int status = 0;
    pid_t result = ::waitpid(pid, &status, 0);
    if (result == pid) {
      exit = DecodeWaitStatus(status);
      return;
    }
    if (result < 0 && errno == EINTR) continue;
    exit = ExitStatus{};
    return;
  }
}

// Returns whether any process other than a zombie still belongs to process group `group`.
// Zombies are skipped because their parent, not this server, decides when they disappear.
bool GroupHasLiveMembers(int64_t group) {
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return false;
  bool found = false;
  while (dirent* entry = ::readdir(proc)) {
    int64_t pid = 0;
    std::string_view name = entry->d_name;
    auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), pid);
    if (error != std::errc() || end != name.data() + name.size()) continue;
    auto stat = ReadProcessStat(pid);
    if (stat && stat->process_group == group && stat->state != 'Z') {
      found = true;
      break;
    }
  }
  ::closedir(proc);
  return found;
}

// Sleeps for a growing interval, so short processes return quickly and long ones cost little.
class Backoff {
 public:
  explicit Backoff(milliseconds max_step) : max_step_(max_step) {}

  void Sleep(steady_clock::time_point deadline) {
    auto now = steady_clock::now();
    steady_clock::duration remaining = std::max(deadline - now, steady_clock::duration::zero());
    auto step = std::min<steady_clock::duration>(step_, remaining);
    std::this_thread::sleep_for(std::max<steady_clock::duration>(step, milliseconds(1)));
    step_ = std::min(step_ * 2, max_step_);
  }

 private:
  milliseconds step_{1};
  milliseconds max_step_;
};

// Terminates our own child's process group and collects the child's exit status.
void TerminateChildGroup(pid_t pid, milliseconds grace, ExitStatus& exit) {
  ::kill(-pid, SIGTERM);
  auto deadline = steady_clock::now() + grace;
  bool reaped = false;
  Backoff backoff(milliseconds(20));
  while (steady_clock::now() < deadline) {
    if (!reaped) reaped = TryReap(pid, exit);
    if (reaped && !GroupHasLiveMembers(pid)) return;
    backoff.Sleep(deadline);
  }
  ::kill(-pid, SIGKILL);
  if (!reaped) ReapBlocking(pid, exit);
}

// Everything the child needs, prepared before fork: after fork only async-signal-safe calls are
// allowed, because other threads of the server may hold locks the child would inherit held.
struct ChildPlan {
  std::vector<char*> argv;
  std::vector<char*> envp;
  const char* working_dir = nullptr;
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  int start_gate_fd = -1;  // read end: one byte means "run", end of file means "give up"
  int report_fd = -1;      // write end: receives a ChildFailure when exec or chdir fails
};

void CloseOtherDescriptors(int keep_low, int keep_high) {
  if (keep_low > 3) ::close_range(3, keep_low - 1, 0);
  if (keep_high > keep_low + 1) ::close_range(keep_low + 1, keep_high - 1, 0);
  ::close_range(keep_high + 1, ~0U, 0);
}

[[noreturn]] void RunChild(const ChildPlan& plan) {
  ::setpgid(0, 0);

  // Signal dispositions set to "ignore" and blocked signals survive exec. The program must start
  // with the defaults, because otherwise SIGTERM from a timeout might not end it.
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  for (int signal = 1; signal < NSIG; ++signal) ::sigaction(signal, &default_action, nullptr);

  ::dup2(plan.stdin_fd, STDIN_FILENO);
  ::dup2(plan.stdout_fd, STDOUT_FILENO);
  ::dup2(plan.stderr_fd, STDERR_FILENO);
  CloseOtherDescriptors(std::min(plan.start_gate_fd, plan.report_fd),
                        std::max(plan.start_gate_fd, plan.report_fd));

  char go = 0;
  ssize_t n = 0;
  do {
    n = ::read(plan.start_gate_fd, &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) ::_exit(kCancelledExitCode);

  ChildFailure failure;
  if (::chdir(plan.working_dir) != 0) {
    failure = {kStageChdir, errno};
  } else {
    ::execve(plan.argv[0], plan.argv.data(), plan.envp.data());
    failure = {kStageExec, errno};
  }
  ssize_t ignored = ::write(plan.report_fd, &failure, sizeof(failure));
  (void)ignored;
  ::_exit(127);
}

// Reads the child's report after its start gate opened: end of file means exec succeeded.
std::optional<ChildFailure> ReadChildFailure(int report_fd) {
  ChildFailure failure;
  size_t done = 0;
  auto* bytes = reinterpret_cast<char*>(&failure);
  while (done < sizeof(failure)) {
    ssize_t n = ::read(report_fd, bytes + done, sizeof(failure) - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  if (done != sizeof(failure)) return std::nullopt;
  return failure;
}

}  // namespace

std::optional<ProcessStat> ReadProcessStat(int64_t pid) {
  std::ifstream file(fmt::format("/proc/{}/stat", pid));
  std::string line;
  if (!file || !std::getline(file, line)) return std::nullopt;

  // The command name in field 2 is in parentheses and may itself contain spaces and
  // parentheses, so the remaining fields start after the last ')'.
  size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;  // fields[0] is field 3 (state)
  std::string field;
  while (rest >> field && fields.size() < 20) fields.push_back(field);
  if (fields.size() < 20 || fields[0].empty()) return std::nullopt;

  ProcessStat stat;
  stat.state = fields[0][0];
  const std::string& group = fields[2];     // field 5, pgrp
  const std::string& started = fields[19];  // field 22, starttime
  auto group_result =
      std::from_chars(group.data(), group.data() + group.size(), stat.process_group);
  auto start_result =
      std::from_chars(started.data(), started.data() + started.size(), stat.start_ticks);
  if (group_result.ec != std::errc() || start_result.ec != std::errc()) return std::nullopt;
  return stat;
}

bool IsRunning(const ProcessIdentity& identity) {
  if (identity.pid <= 0) return false;
  auto stat = ReadProcessStat(identity.pid);
  return stat && stat->state != 'Z' && stat->start_ticks == identity.start_ticks;
}

std::string ExitStatus::Describe() const {
  if (!known) return "exit status unknown";
  if (signal != 0) return fmt::format("killed by signal {} ({})", signal, ::strsignal(signal));
  return fmt::format("exit code {}", code);
}

core::Result<ProcessRun> RunProcess(const ProcessSpec& spec, const ProcessLimits& limits,
                                    std::stop_token stop, const BeforeStart& before_start) {
  if (spec.argv.empty() || spec.argv[0].empty() || spec.argv[0][0] != '/') {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "the program must be given by absolute path, got '{}'",
                           spec.argv.empty() ? "" : spec.argv[0]);
  }

  // Open everything the child needs while this is still an ordinary multithreaded process.
  auto dev_null = AboveStdio(Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
  if (!dev_null || dev_null->get() < 0)
    return std::unexpected(SystemError("open /dev/null", errno));
  auto stdout_file = MakeUnlinkedFile(spec.output_dir);
  if (!stdout_file) return std::unexpected(stdout_file.error());
  auto stderr_file = MakeUnlinkedFile(spec.output_dir);
  if (!stderr_file) return std::unexpected(stderr_file.error());
  auto start_gate = MakeStartGate();
  if (!start_gate) return std::unexpected(start_gate.error());
  auto report = MakePipe();
  if (!report) return std::unexpected(report.error());

  std::vector<std::string> argv_storage = spec.argv;
  std::vector<std::string> env_storage = spec.env;
  ChildPlan plan;
  for (std::string& arg : argv_storage) plan.argv.push_back(arg.data());
  plan.argv.push_back(nullptr);
  for (std::string& variable : env_storage) plan.envp.push_back(variable.data());
  plan.envp.push_back(nullptr);
  plan.working_dir = spec.working_dir.empty() ? "/" : spec.working_dir.c_str();
  plan.stdin_fd = dev_null->get();
  plan.stdout_fd = stdout_file->get();
  plan.stderr_fd = stderr_file->get();
  plan.start_gate_fd = start_gate->first.get();
  plan.report_fd = report->second.get();

  auto started = steady_clock::now();
  pid_t pid = ::fork();
  if (pid < 0) return std::unexpected(SystemError("fork", errno));
  if (pid == 0) RunChild(plan);

  // Parent. Setting the group here too closes the race in which the parent signals the group
  // before the child has created it.
  ::setpgid(pid, pid);
  start_gate->first.Reset();
  report->second.Reset();
  dev_null->Reset();

  ProcessRun run;
  run.identity.pid = pid;
  auto stat = ReadProcessStat(pid);
  run.identity.start_ticks = stat ? stat->start_ticks : 0;

  auto cancel_start = [&](const core::Error& error) -> std::unexpected<core::Error> {
    ::kill(pid, SIGKILL);
    start_gate->second.Reset();
    ReapBlocking(pid, run.exit);
    return std::unexpected(error);
  };
  if (!stat) {
    return cancel_start(core::Error{core::ErrorCode::kInternal,
                                    fmt::format("could not read /proc/{}/stat of the new process "
                                                "running {}",
                                                pid, spec.argv[0])});
  }
  if (before_start) {
    auto recorded = before_start(run.identity);
    if (!recorded) return cancel_start(recorded.error());
  }

  // Open the start gate, then learn whether exec worked: the report pipe closes on exec.
  char go = 1;
  if (::send(start_gate->second.get(), &go, 1, MSG_NOSIGNAL) != 1) {
    return cancel_start(SystemError("write to the start gate", errno));
  }
  start_gate->second.Reset();
  std::optional<ChildFailure> failure = ReadChildFailure(report->first.get());
  if (failure) {
    ReapBlocking(pid, run.exit);
    std::string_view stage = failure->stage == kStageChdir ? "enter working folder" : "execute";
    std::string_view subject =
        failure->stage == kStageChdir ? std::string_view(plan.working_dir) : spec.argv[0];
    return core::MakeError(core::ErrorCode::kFailedPrecondition, "could not {} {}: {}", stage,
                           subject, std::strerror(failure->error));
  }

  // Wait for the end, the deadline or a stop request.
  auto deadline = started + limits.timeout;
  Backoff backoff(milliseconds(50));
  while (true) {
    if (TryReap(pid, run.exit)) break;
    if (stop.stop_requested()) {
      run.stopped = true;
      TerminateChildGroup(pid, limits.kill_grace, run.exit);
      break;
    }
    if (steady_clock::now() >= deadline) {
      run.timed_out = true;
      TerminateChildGroup(pid, limits.kill_grace, run.exit);
      break;
    }
    backoff.Sleep(deadline);
  }

  run.duration = std::chrono::duration_cast<milliseconds>(steady_clock::now() - started);
  run.stdout_output = ReadTail(stdout_file->get(), limits.output_max);
  run.stderr_output = ReadTail(stderr_file->get(), limits.output_max);
  return run;
}

WaitEnd WaitUntilGone(const ProcessIdentity& identity, steady_clock::time_point deadline,
                      std::stop_token stop) {
  Backoff backoff(milliseconds(200));
  while (true) {
    if (!IsRunning(identity)) return WaitEnd::kGone;
    if (stop.stop_requested()) return WaitEnd::kStopped;
    if (steady_clock::now() >= deadline) return WaitEnd::kDeadline;
    backoff.Sleep(deadline);
  }
}

void TerminateGroup(const ProcessIdentity& identity, milliseconds grace) {
  if (!IsRunning(identity)) return;

  // The process itself is signalled too, in case it left the group it was started in.
  auto leader = static_cast<pid_t>(identity.pid);
  ::kill(-leader, SIGTERM);
  ::kill(leader, SIGTERM);

  auto deadline = steady_clock::now() + grace;
  Backoff backoff(milliseconds(20));
  while (steady_clock::now() < deadline) {
    if (!IsRunning(identity) && !GroupHasLiveMembers(leader)) return;
    backoff.Sleep(deadline);
  }
  ::kill(-leader, SIGKILL);
  if (IsRunning(identity)) ::kill(leader, SIGKILL);
}

}  // namespace backout::providers::command
