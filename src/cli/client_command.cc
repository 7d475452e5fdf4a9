#include "cli/client_command.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <sstream>

#include <fmt/format.h>

#include "cli/cli.h"
#include "core/time.h"

namespace backout::cli {

void AddClientFlags(CLI::App& command, ClientFlags& flags) {
  command
      .add_option("--url", flags.connection.url,
                  "Base URL of the Backout server, e.g. http://127.0.0.1:8470")
      ->envname("BACKOUT_URL")
      ->capture_default_str()
      ->group("Connection");
  command
      .add_option("--token", flags.connection.token,
                  "Bearer token that identifies the caller (printed once by `backout user create`, "
                  "or <data_dir>/admin.token for the first admin)")
      ->envname("BACKOUT_TOKEN")
      ->group("Connection");
  command
      .add_option("-o,--output", flags.output,
                  "Output format: table (aligned columns, or key: value for one object), json "
                  "or yaml")
      ->check(CLI::IsMember({"table", "json", "yaml"}))
      ->capture_default_str()
      ->group("Connection");
}

int CheckErrorStatus(const core::Error& error) {
  switch (error.code) {
    case core::ErrorCode::kInvalidArgument:
    case core::ErrorCode::kNotFound:
      return kExitUsage;
    default:
      return kExitCouldNotCheck;
  }
}

int UsageErrorStatus(const core::Error& error) {
  return error.code == core::ErrorCode::kInvalidArgument ? kExitUsage : kExitFailed;
}

int RunClient(const ClientFlags& flags, const ClientBody& body,
              const std::function<int(const core::Error&)>& error_status) {
  auto fail = [&error_status](const core::Error& error) {
    PrintNote(fmt::format("error: {}\n", error.message));
    return error_status ? error_status(error) : kExitFailed;
  };

  // The validator on -o already restricted the text, so parsing cannot fail here.
  const OutputFormat format = ParseOutputFormat(flags.output).value_or(OutputFormat::kTable);
  auto api = ApiClient::Create(flags.connection);
  if (!api) return fail(api.error());
  ClientContext context{*api, format};
  auto status = body(context);
  if (!status) return fail(status.error());
  return *status;
}

namespace {

// Runs `body` unless an option value of `command` is not UTF-8 text, which is a usage error.
int RunClientWithText(const CLI::App& command, const ClientFlags& flags, const ClientBody& body,
                      const std::function<int(const core::Error&)>& error_status = {}) {
  if (auto checked = CheckOptionsText(command); !checked) {
    PrintNote(fmt::format("error: {}\n", checked.error().message));
    return kExitUsage;
  }
  return RunClient(flags, body, error_status);
}

}  // namespace

void SetClientCallback(CLI::App& command, ClientFlags& flags, int& exit_status, ClientBody body,
                       std::function<int(const core::Error&)> error_status) {
  AddClientFlags(command, flags);
  command.callback([&command, &flags, &exit_status, body = std::move(body),
                    error_status = std::move(error_status)] {
    exit_status = RunClientWithText(command, flags, body, error_status);
  });
}

void SetCheckCallback(CLI::App& command, ClientFlags& flags, int& exit_status, ClientBody body) {
  AddClientFlags(command, flags);
  command.callback([&command, &flags, &exit_status, body = std::move(body)] {
    exit_status = RunClientWithText(command, flags, body, CheckErrorStatus);
  });
}

core::Result<int> PrintSingle(const ClientContext& context, const core::Result<Json>& answer) {
  if (!answer) {
    return std::unexpected(answer.error());
  }
  PrintOut(RenderSingle(*answer, context.format));
  return kExitOk;
}

core::Result<int> PrintList(const ClientContext& context, const core::Result<Json>& answer,
                            const std::vector<Column>& columns) {
  if (!answer) {
    return std::unexpected(answer.error());
  }
  PrintOut(RenderList(*answer, columns, context.format));
  return kExitOk;
}

void PrintOut(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

void PrintNote(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

core::Result<std::string> ReadWholeFile(const std::string& path) {
  // ReadFileUpTo rejects what is not a regular file, for which file_size fails.
  std::error_code error;
  const uintmax_t size = std::filesystem::file_size(path, error);
  return ReadFileUpTo(path, error ? 0 : static_cast<size_t>(size));
}

core::Result<std::string> ReadFileUpTo(const std::string& path, size_t max_bytes) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "{} is not a regular file{}; pass the path of a file", path,
                           error ? fmt::format(" ({})", error.message()) : std::string());
  }
  const uintmax_t size = std::filesystem::file_size(path, error);
  if (error) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "cannot read the size of {}: {}; check the path and its permissions",
                           path, error.message());
  }

  if (size > max_bytes) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "{} has {} bytes, over the limit of {} bytes; use a smaller file", path,
                           size, max_bytes);
  }

  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "cannot open {}: check the path and its permissions", path);
  }

  // Reads in chunks up to one byte past the limit, which distinguishes a file that grew since the
  // size check from one exactly at the limit.
  std::string content;
  content.reserve(static_cast<size_t>(size));
  std::array<char, 64 * 1024> chunk{};
  while (content.size() <= max_bytes && file) {
    const size_t wanted = std::min(chunk.size(), max_bytes + 1 - content.size());
    file.read(chunk.data(), static_cast<std::streamsize>(wanted));
    content.append(chunk.data(), static_cast<size_t>(file.gcount()));
  }
  if (file.bad()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "reading {} failed", path);
  }
  if (content.size() > max_bytes) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "{} grew to over {} bytes, the limit, while it was read; use a file "
                           "that is not being written",
                           path, max_bytes);
  }
  return content;
}

core::Result<std::string> ReadTextFile(const std::string& path) {
  // The server refuses text bodies over 1 MiB, so reading stops one byte past that: a huge file
  // or a device such as /dev/zero is refused here instead of filling memory.
  constexpr size_t kMaxTextBytes = size_t{1} << 20;
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "cannot open {}: check the path and its permissions", path);
  }
  std::string content(kMaxTextBytes + 1, '\0');
  file.read(content.data(), static_cast<std::streamsize>(content.size()));
  if (file.bad()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "reading {} failed", path);
  }
  content.resize(static_cast<size_t>(file.gcount()));
  if (content.size() > kMaxTextBytes) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "{} is larger than the limit of {} bytes (1 MiB) for text the server "
                           "stores; shorten it",
                           path, kMaxTextBytes);
  }
  if (auto offset = FindInvalidUtf8(content)) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "{} is not UTF-8 text (invalid byte 0x{:02X} at offset {}); pass a "
                           "UTF-8 text file",
                           path, static_cast<unsigned char>(content[*offset]), *offset);
  }
  return content;
}

core::Result<void> CheckOptionText(const CLI::Option& option) {
  for (const std::string& value : option.results()) {
    if (auto offset = FindInvalidUtf8(value)) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "{}: the value is not UTF-8 text (invalid byte at offset {}); pass "
                             "UTF-8 text",
                             option.get_name(), *offset);
    }
  }
  return {};
}

core::Result<void> CheckOptionsText(const CLI::App& command) {
  for (const CLI::Option* option : command.get_options()) {
    if (auto checked = CheckOptionText(*option); !checked) return checked;
  }
  return {};
}

void CheckPeriodOrder(const std::string& from, const std::string& to) {
  if (from.empty() || to.empty()) return;
  auto start = core::ParseTime(from);
  auto end = core::ParseTime(to);
  if (start && end && !(*start < *end)) {
    throw CLI::ValidationError(fmt::format(
        "--from {} is not before --to {}, so the period is empty (--to is exclusive); give a "
        "--from earlier than --to",
        from, to));
  }
}

CLI::Validator NonEmptyValidator(std::string fix) {
  return CLI::Validator(
      [fix = std::move(fix)](std::string& text) -> std::string {
        return text.empty() ? "the value is empty; " + fix : std::string();
      },
      "", "non-empty");
}

CLI::Validator LimitValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        // strtoull, which CLI11 converts with, skips leading white space before the sign.
        const size_t first = text.find_first_not_of(" \t\n\v\f\r");
        if (first == std::string::npos) return "";
        if (text[first] == '-') {
          return fmt::format("{} is negative; give 0 to show all or a positive count", text);
        }
        // strtoull saturates a value past 2^64-1 to the maximum, which would show everything.
        uint64_t limit = 0;
        const char* digits = text.data() + first + (text[first] == '+' ? 1 : 0);
        const auto [end, error] = std::from_chars(digits, text.data() + text.size(), limit);
        if (error == std::errc::result_out_of_range) {
          return fmt::format("{} is too large; give 0 to show all or a count up to {}", text,
                             std::numeric_limits<uint64_t>::max());
        }
        return "";
      },
      "COUNT", "count");
}

CLI::Validator WholeNumberValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        uint64_t number = 0;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
        if (!text.empty() && error == std::errc() && end == text.data() + text.size()) return "";
        if (error == std::errc::result_out_of_range) {
          return fmt::format("{} is too large; give a whole number from 0 to {}", text,
                             std::numeric_limits<uint64_t>::max());
        }
        return fmt::format("{} is not a whole number; give a number from 0, such as 12", text);
      },
      "NUMBER", "whole number");
}

CLI::Validator TimeValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        auto parsed = core::ParseTime(text);
        return parsed ? std::string() : parsed.error().message;
      },
      "RFC3339", "RFC 3339 time");
}

CLI::Validator DateValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        static const std::regex kDate("[0-9]{4}-[0-9]{2}-[0-9]{2}");
        if (!std::regex_match(text, kDate)) {
          return fmt::format("'{}' is not a date: write YYYY-MM-DD, e.g. 2026-12-31", text);
        }
        // A date is valid when it parses as the start of that day.
        auto parsed = core::ParseTime(text + "T00:00:00Z");
        return parsed ? std::string()
                      : fmt::format("'{}' is not a calendar date: write YYYY-MM-DD", text);
      },
      "YYYY-MM-DD", "calendar date");
}

CLI::Validator DurationValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        auto parsed = core::ParseDuration(text);
        return parsed ? std::string() : parsed.error().message;
      },
      "DURATION", "duration");
}

}  // namespace backout::cli
