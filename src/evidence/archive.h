#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace backout::evidence {

// One regular file of an archive.
struct ArchiveFile {
  std::string path;  // relative, '/'-separated, such as "ledger/entries.jsonl"
  std::string content;
};

// Loads libarchive with dlopen and resolves the functions that WriteTarGz and ReadTarGz call.
// Only the first call in a process does this, and later calls return its result. Both functions
// call it first, so another caller needs it only to get the error early. Fails with kUnavailable,
// naming the library and its Debian package, when libarchive is missing or lacks a function.
core::Result<void> LoadLibarchive();

// Writes `files`, in the given order, as a gzip-compressed ustar archive whose bytes depend only
// on the files and `mtime`: every entry has mode 0644, owner and group 0 named "root", and
// modification time `mtime` (seconds since 1970), and the gzip header carries neither a time nor
// a file name. Writing the same input twice gives the same bytes.
core::Result<std::string> WriteTarGz(std::span<const ArchiveFile> files, int64_t mtime);

// Reads a gzip-compressed tar archive's regular files in stored order, skipping folder entries
// and removing a leading "./" from paths.
// Rejects (kInvalidArgument) other entries that are not regular files, absolute paths, paths with a
// ".." segment, a path given twice, and archives whose files add up to more than `max_bytes`.
core::Result<std::vector<ArchiveFile>> ReadTarGz(std::string_view bytes,
                                                 uint64_t max_bytes = 1ull << 30);

}  // namespace backout::evidence
