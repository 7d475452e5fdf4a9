#include "cli/client_command.h"

#include <cstdio>
#include <fstream>
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

int RunClient(const ClientFlags& flags, const ClientBody& body) {
  // The validator on -o already restricted the text, so parsing cannot fail here.
  const OutputFormat format = ParseOutputFormat(flags.output).value_or(OutputFormat::kTable);

  auto api = ApiClient::Create(flags.connection);
  if (!api) {
    PrintNote(fmt::format("error: {}\n", api.error().message));
    return kExitFailed;
  }
  ClientContext context{*api, format};
  auto status = body(context);
  if (!status) {
    PrintNote(fmt::format("error: {}\n", status.error().message));
    return kExitFailed;
  }
  return *status;
}

void SetClientCallback(CLI::App& command, ClientFlags& flags, int& exit_status, ClientBody body) {
  AddClientFlags(command, flags);
  command.callback(
      [&flags, &exit_status, body = std::move(body)] { exit_status = RunClient(flags, body); });
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
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "cannot open {}: check the path and its permissions", path);
  }
  std::ostringstream content;
  content << file.rdbuf();
  if (file.bad()) {
    return core::MakeError(core::ErrorCode::kInvalidArgument, "reading {} failed", path);
  }
  return content.str();
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
