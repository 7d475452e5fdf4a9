#include "evidence/archive.h"

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <set>

#include "core/shared_library.h"

namespace backout::evidence {
namespace {

// Every libarchive function this file calls.
#define BACKOUT_LIBARCHIVE_FUNCTIONS(X)    \
  X(archive_entry_filetype)                \
  X(archive_entry_free)                    \
  X(archive_entry_new)                     \
  X(archive_entry_pathname)                \
  X(archive_entry_set_filetype)            \
  X(archive_entry_set_gid)                 \
  X(archive_entry_set_gname)               \
  X(archive_entry_set_mtime)               \
  X(archive_entry_set_pathname)            \
  X(archive_entry_set_perm)                \
  X(archive_entry_set_size)                \
  X(archive_entry_set_uid)                 \
  X(archive_entry_set_uname)               \
  X(archive_error_string)                  \
  X(archive_read_data)                     \
  X(archive_read_free)                     \
  X(archive_read_new)                      \
  X(archive_read_next_header)              \
  X(archive_read_open_memory)              \
  X(archive_read_support_filter_gzip)      \
  X(archive_read_support_format_tar)       \
  X(archive_write_add_filter_gzip)         \
  X(archive_write_close)                   \
  X(archive_write_data)                    \
  X(archive_write_free)                    \
  X(archive_write_header)                  \
  X(archive_write_new)                     \
  X(archive_write_open2)                   \
  X(archive_write_set_bytes_in_last_block) \
  X(archive_write_set_filter_option)       \
  X(archive_write_set_format_ustar)

struct Libarchive {
  BACKOUT_LIBARCHIVE_FUNCTIONS(BACKOUT_LIBRARY_FUNCTION)
};

// Loads libarchive on the first call and returns the same result on later calls. libarchive
// brings libxml2 with ICU, nettle, liblzma, libzstd, liblz4, libbz2 and libacl, which only the
// export and verification of evidence bundles need, so the binary does not link it.
const core::Result<Libarchive>& LoadFunctions() {
  static const core::Result<Libarchive> loaded = []() -> core::Result<Libarchive> {
    auto opened = core::SharedLibrary::Open(BACKOUT_LIBARCHIVE_SONAME, BACKOUT_LIBARCHIVE_PACKAGE,
                                            "evidence bundles (tar.gz archives)");
    if (!opened) return std::unexpected(opened.error());
    core::SharedLibrary& library = *opened;
    Libarchive functions;
    BACKOUT_LIBARCHIVE_FUNCTIONS(BACKOUT_RESOLVE_FUNCTION)
    if (auto resolved = library.CheckResolved(); !resolved) {
      return std::unexpected(resolved.error());
    }
    return functions;
  }();
  return loaded;
}

// Returns the loaded functions. WriteTarGz and ReadTarGz return the load error before anything
// calls this.
const Libarchive& Archive() { return *LoadFunctions(); }

struct ArchiveWriterDeleter {
  void operator()(archive* handle) const { Archive().archive_write_free(handle); }
};
struct ArchiveReaderDeleter {
  void operator()(archive* handle) const { Archive().archive_read_free(handle); }
};
struct EntryDeleter {
  void operator()(archive_entry* entry) const { Archive().archive_entry_free(entry); }
};

la_ssize_t AppendToString(archive*, void* client_data, const void* buffer, size_t length) {
  static_cast<std::string*>(client_data)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

std::string LibarchiveMessage(archive* handle) {
  const char* message = Archive().archive_error_string(handle);
  return message == nullptr ? "unknown libarchive error" : message;
}

bool SafePath(std::string_view path) {
  if (path.empty() || path.front() == '/') return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view segment = path.substr(start, end - start);
    if (segment == "..") return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

core::Result<void> LoadLibarchive() {
  const core::Result<Libarchive>& loaded = LoadFunctions();
  if (!loaded) return std::unexpected(loaded.error());
  return {};
}

core::Result<std::string> WriteTarGz(std::span<const ArchiveFile> files, int64_t mtime) {
  if (auto loaded = LoadLibarchive(); !loaded) return std::unexpected(loaded.error());
  std::string out;
  std::unique_ptr<archive, ArchiveWriterDeleter> writer(Archive().archive_write_new());
  if (!writer) return core::MakeError(core::ErrorCode::kInternal, "archive_write_new failed");

  // The gzip filter stores the current time in its header unless configured not to, which would
  // make two exports of the same incident differ.
  if (Archive().archive_write_add_filter_gzip(writer.get()) != ARCHIVE_OK ||
      Archive().archive_write_set_filter_option(writer.get(), "gzip", "timestamp", nullptr) !=
          ARCHIVE_OK ||
      Archive().archive_write_set_format_ustar(writer.get()) != ARCHIVE_OK ||
      // Without this the compressed stream is padded with zeros to a 10240-byte block.
      Archive().archive_write_set_bytes_in_last_block(writer.get(), 1) != ARCHIVE_OK ||
      Archive().archive_write_open2(writer.get(), &out, nullptr, AppendToString, nullptr,
                                    nullptr) != ARCHIVE_OK) {
    return core::MakeError(core::ErrorCode::kInternal, "cannot start the tar.gz archive: {}",
                           LibarchiveMessage(writer.get()));
  }

  for (const ArchiveFile& file : files) {
    std::unique_ptr<archive_entry, EntryDeleter> entry(Archive().archive_entry_new());
    Archive().archive_entry_set_pathname(entry.get(), file.path.c_str());
    Archive().archive_entry_set_size(entry.get(), static_cast<la_int64_t>(file.content.size()));
    Archive().archive_entry_set_filetype(entry.get(), AE_IFREG);
    Archive().archive_entry_set_perm(entry.get(), 0644);
    Archive().archive_entry_set_mtime(entry.get(), mtime, 0);
    Archive().archive_entry_set_uid(entry.get(), 0);
    Archive().archive_entry_set_gid(entry.get(), 0);
    Archive().archive_entry_set_uname(entry.get(), "root");
    Archive().archive_entry_set_gname(entry.get(), "root");
    if (Archive().archive_write_header(writer.get(), entry.get()) != ARCHIVE_OK) {
      return core::MakeError(core::ErrorCode::kInternal, "cannot add '{}' to the archive: {}",
                             file.path, LibarchiveMessage(writer.get()));
    }
    if (!file.content.empty() &&
        Archive().archive_write_data(writer.get(), file.content.data(), file.content.size()) !=
            static_cast<la_ssize_t>(file.content.size())) {
      return core::MakeError(core::ErrorCode::kInternal, "cannot write '{}' to the archive: {}",
                             file.path, LibarchiveMessage(writer.get()));
    }
  }
  if (Archive().archive_write_close(writer.get()) != ARCHIVE_OK) {
    return core::MakeError(core::ErrorCode::kInternal, "cannot finish the archive: {}",
                           LibarchiveMessage(writer.get()));
  }
  return out;
}

core::Result<std::vector<ArchiveFile>> ReadTarGz(std::string_view bytes, uint64_t max_bytes) {
  if (auto loaded = LoadLibarchive(); !loaded) return std::unexpected(loaded.error());
  std::unique_ptr<archive, ArchiveReaderDeleter> reader(Archive().archive_read_new());
  if (!reader) return core::MakeError(core::ErrorCode::kInternal, "archive_read_new failed");
  Archive().archive_read_support_filter_gzip(reader.get());
  Archive().archive_read_support_format_tar(reader.get());
  if (Archive().archive_read_open_memory(reader.get(), bytes.data(), bytes.size()) != ARCHIVE_OK) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "not a gzip-compressed tar archive: {}",
                           LibarchiveMessage(reader.get()));
  }

  std::vector<ArchiveFile> files;
  std::set<std::string> seen;
  uint64_t total = 0;
  while (true) {
    archive_entry* entry = nullptr;
    const int status = Archive().archive_read_next_header(reader.get(), &entry);
    if (status == ARCHIVE_EOF) break;
    if (status != ARCHIVE_OK) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "the archive is damaged after {} files: {}", files.size(),
                             LibarchiveMessage(reader.get()));
    }
    const char* raw_path = Archive().archive_entry_pathname(entry);
    std::string path = raw_path == nullptr ? "" : raw_path;
    while (path.starts_with("./")) path.erase(0, 2);
    // Folders carry no content, and tools such as GNU tar add them when an auditor repacks a
    // bundle, so they are skipped.
    if (Archive().archive_entry_filetype(entry) == AE_IFDIR) continue;
    if (Archive().archive_entry_filetype(entry) != AE_IFREG) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "archive entry '{}' is not a regular file", path);
    }
    if (!SafePath(path)) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "archive entry '{}' has an absolute path or a '..' segment", path);
    }
    if (!seen.insert(path).second) {
      return core::MakeError(core::ErrorCode::kInvalidArgument, "archive entry '{}' appears twice",
                             path);
    }

    ArchiveFile file{.path = std::move(path), .content = {}};
    char buffer[16384];
    while (true) {
      const la_ssize_t read = Archive().archive_read_data(reader.get(), buffer, sizeof(buffer));
      if (read == 0) break;
      if (read < 0) {
        return core::MakeError(core::ErrorCode::kInvalidArgument,
                               "cannot read '{}' from the archive: {}", file.path,
                               LibarchiveMessage(reader.get()));
      }
      total += static_cast<uint64_t>(read);
      if (total > max_bytes) {
        return core::MakeError(core::ErrorCode::kInvalidArgument,
                               "the archive holds more than {} bytes; it is not an evidence "
                               "bundle of this format",
                               max_bytes);
      }
      file.content.append(buffer, static_cast<size_t>(read));
    }
    files.push_back(std::move(file));
  }
  return files;
}

}  // namespace backout::evidence
