#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/api_client.h"
#include "cli/output.h"
#include "core/error.h"

namespace backout::cli {

// Options every client command takes: which server, which caller, which output format.
struct ClientFlags {
  ConnectionOptions connection;
  std::string output = "table";
};

// What a client command's body gets: a connected client and the output format.
struct ClientContext {
  ApiClient& api;
  OutputFormat format;
};

// The body of a client command. It prints its own result on success and returns the exit status
// (kExitOk, or kExitFailed when the outcome is a failure the server did not report as an error);
// an error it returns is printed to stderr and exits 1.
using ClientBody = std::function<core::Result<int>(ClientContext&)>;

// Adds --url (env BACKOUT_URL), --token (env BACKOUT_TOKEN) and -o/--output to `command`.
void AddClientFlags(CLI::App& command, ClientFlags& flags);

// Maps an error to the exit status of a check command: kExitUsage for a wrong input
// (kInvalidArgument, kNotFound), kExitCouldNotCheck for everything else (server unreachable,
// token rejected, permission denied, server error).
int CheckErrorStatus(const core::Error& error);

// Maps an error to the exit status of a command that changes state: kExitUsage for a wrong input
// (kInvalidArgument, such as a file over its limit or a value the server rejects with HTTP 400),
// kExitFailed for everything else.
int UsageErrorStatus(const core::Error& error);

// Connects with `flags`, runs `body` and returns the exit status. Errors go to stderr as one
// "error: …" line and exit with `error_status(error)`, kExitFailed when it is empty.
int RunClient(const ClientFlags& flags, const ClientBody& body,
              const std::function<int(const core::Error&)>& error_status = {});

// Makes `command` a leaf client command: adds the client flags and a callback that runs `body`
// and stores the exit status in `exit_status`. Before `body` runs, every option value must be
// UTF-8 text, because values go into JSON request bodies. An invalid one is a usage error
// (kExitUsage) naming the option. An error from `body` exits with `error_status(error)`, or
// kExitFailed when `error_status` is empty.
void SetClientCallback(CLI::App& command, ClientFlags& flags, int& exit_status, ClientBody body,
                       std::function<int(const core::Error&)> error_status = {});

// Like SetClientCallback for a check command, whose findings exit kExitFailed: an error exits
// with CheckErrorStatus instead of kExitFailed.
void SetCheckCallback(CLI::App& command, ClientFlags& flags, int& exit_status, ClientBody body);

// Prints a single-object answer in the context's format and returns kExitOk, or returns the
// answer's error.
core::Result<int> PrintSingle(const ClientContext& context, const core::Result<Json>& answer);

// Prints a list answer (the items array) as a table of `columns` or in full as JSON or YAML and
// returns kExitOk, or returns the answer's error.
core::Result<int> PrintList(const ClientContext& context, const core::Result<Json>& answer,
                            const std::vector<Column>& columns);

// Prints to stdout.
void PrintOut(std::string_view text);

// Prints a note for the person at the terminal to stderr, so stdout stays machine-readable.
void PrintNote(std::string_view text);

// The largest PEM public key or exported checkpoint file the CLI reads, in bytes. Both are well
// under 1 KiB, so a larger file is not one of them.
inline constexpr size_t kMaxKeyFileBytes = size_t{64} << 10;

// Reads a whole regular file, stopping at the size it had when the read began, so a device such
// as /dev/zero or a file that keeps growing is rejected. Fails with kInvalidArgument naming the
// path.
core::Result<std::string> ReadWholeFile(const std::string& path);

// Reads a regular file of at most `max_bytes` bytes. A file whose size is over the limit is
// rejected before any byte is read, and the read stops one byte past the limit, so a file that
// grows meanwhile is rejected too. Errors are kInvalidArgument naming the path, and the size and
// the limit when the file is too large.
core::Result<std::string> ReadFileUpTo(const std::string& path, size_t max_bytes);

// Reads a whole text file that goes into a JSON request; fails with kInvalidArgument naming the
// path when it cannot be read or is not UTF-8 text.
core::Result<std::string> ReadTextFile(const std::string& path);

// Checks that each value of `option` is UTF-8 text; the error names the option.
core::Result<void> CheckOptionText(const CLI::Option& option);

// Checks every option of `command` with CheckOptionText.
core::Result<void> CheckOptionsText(const CLI::App& command);

// Throws CLI::ValidationError, a usage error, naming both values when `from` and `to` are both
// set and `from` is not before `to`: the half-open period [from, to) is then empty. Both are
// RFC 3339 times that a validator has already accepted.
void CheckPeriodOrder(const std::string& from, const std::string& to);

// Rejects an empty value with a message naming the option and ending in `fix`, what to do instead.
// Filter options use the default because an empty filter would match everything.
CLI::Validator NonEmptyValidator(std::string fix = "give a value or leave the option out");

// Rejects a negative value of a `--limit` option, and one over 2^64-1. CLI11 2.1.2 converts an
// unsigned option with strtoull, which wraps "-1" and saturates a larger value to the largest
// value, so the command would show everything.
CLI::Validator LimitValidator();

// Accepts a whole number from 0 to 2^64-1 (a ledger sequence number or tree size). Rejects signs,
// fractions and other text with a message naming the value, in place of CLI11's range message.
CLI::Validator WholeNumberValidator();

// Validates an RFC 3339 time option ("2026-12-04T17:05:41Z").
CLI::Validator TimeValidator();

// Validates a calendar date option ("2026-12-31").
CLI::Validator DateValidator();

// Validates a duration option written as an integer and a unit ("500ms", "30s", "5m", "2h").
CLI::Validator DurationValidator();

}  // namespace backout::cli
