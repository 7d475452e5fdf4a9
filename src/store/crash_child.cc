// store_crash_child URL KEY_FILE [CHECKPOINT_INTERVAL_SECONDS]: the writer the crash suite kills.
// It appends to the ledger in a loop and, only after each Write has returned, prints
// "SEQUENCE NUMBER" on stdout: the new entry's sequence number and the counter value its change
// records. It runs until it is killed or a write fails (exit status 1). The checkpoint interval
// defaults to 0, a checkpoint in every write.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <spdlog/spdlog.h>

#include "ledger/checkpoint.h"
#include "store/store.h"
#include "store/system_clock.h"

namespace {

bool WriteLine(const std::string& line) {
  size_t written = 0;
  while (written < line.size()) {
    const ssize_t n = write(STDOUT_FILENO, line.data() + written, line.size() - written);
    if (n <= 0) return false;
    written += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace backout;
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: %s URL KEY_FILE [CHECKPOINT_INTERVAL_SECONDS]\n", argv[0]);
    return 2;
  }
  int interval_seconds = 0;
  if (argc == 4) {
    char* end = nullptr;
    const long parsed = std::strtol(argv[3], &end, 10);
    if (*argv[3] == '\0' || *end != '\0' || parsed < 0 || parsed > 86400) {
      std::fprintf(stderr,
                   "store_crash_child: invalid checkpoint interval '%s': give whole seconds "
                   "from 0 to 86400\n",
                   argv[3]);
      return 2;
    }
    interval_seconds = static_cast<int>(parsed);
  }
  spdlog::set_level(spdlog::level::warn);

  auto signer = ledger::Signer::LoadOrCreate(argv[2]);
  if (!signer) {
    std::fprintf(stderr, "store_crash_child: %s\n", signer.error().message.c_str());
    return 1;
  }
  store::SystemClock clock;
  store::StoreOptions options;
  options.clock = &clock;
  options.signer = *signer;
  options.checkpoint_interval = std::chrono::seconds(interval_seconds);
  auto opened = store::OpenStore(argv[1], options);
  if (!opened) {
    std::fprintf(stderr, "store_crash_child: %s\n", opened.error().message.c_str());
    return 1;
  }
  store::Store& store = **opened;

  while (true) {
    uint64_t sequence = 0;
    int64_t counter = 0;
    auto written = store.Write([&](store::Transaction& transaction) -> core::Result<void> {
      auto number = transaction.NextNumber("crash");
      if (!number) return std::unexpected(number.error());
      store::Object object{.kind = "crash", .id = std::to_string(*number)};
      object.body = {{"number", *number}};
      if (auto put = transaction.Put(object); !put) return put;
      auto entry = transaction.AppendLedger({.actor = "crash-child",
                                             .action = "crash.appended",
                                             .subject = "crash/" + object.id,
                                             .change = {{"number", *number}}});
      if (!entry) return std::unexpected(entry.error());
      sequence = entry->sequence;
      counter = *number;
      return {};
    });
    if (!written) {
      std::fprintf(stderr, "store_crash_child: %s\n", written.error().message.c_str());
      return 1;
    }
    if (!WriteLine(std::to_string(sequence) + " " + std::to_string(counter) + "\n")) return 1;
  }
}
