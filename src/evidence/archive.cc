#include "evidence/archive.h"

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <set>

namespace backout::evidence {
namespace {

struct ArchiveWriterDeleter {
  void operator()(archive* handle) const { archive_write_free(handle); }
};
struct ArchiveReaderDeleter {
  void operator()(archive* handle) const { archive_read_free(handle); }
};
struct EntryDeleter {
  void operator()(archive_entry* entry) const { archive_entry_free(entry); }
};

la_ssize_t AppendToString(archive*, void* client_data, const void* buffer, size_t length) {
  static_cast<std::string*>(client_data)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

std::string LibarchiveMessage(archive* handle) {
  const char* message = archive_error_string(handle);
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

core::Result<std::string> WriteTarGz(std::span<const ArchiveFile> files, int64_t mtime) {
  std::string out;
  std::unique_ptr<archive, ArchiveWriterDeleter> writer(archive_write_new());
  if (!writer) return core::MakeError(core::ErrorCode::kInternal, "archive_write_new failed");

  // The gzip filter stores the current time in its header unless configured not to, which would
  // make two exports of the same incident differ.
  if (archive_write_add_filter_gzip(writer.get()) != ARCHIVE_OK ||
      archive_write_set_filter_option(writer.get(), "gzip", "timestamp", nullptr) != ARCHIVE_OK ||
      archive_write_set_format_ustar(writer.get()) != ARCHIVE_OK ||
      // Without this the compressed stream is padded with zeros to a 10240-byte block.
      archive_write_set_bytes_in_last_block(writer.get(), 1) != ARCHIVE_OK ||
      archive_write_open2(writer.get(), &out, nullptr, AppendToString, nullptr, nullptr) !=
          ARCHIVE_OK) {
    return core::MakeError(core::ErrorCode::kInternal, "cannot start the tar.gz archive: {}",
                           LibarchiveMessage(writer.get()));
  }

  for (const ArchiveFile& file : files) {
    std::unique_ptr<archive_entry, EntryDeleter> entry(archive_entry_new());
    archive_entry_set_pathname(entry.get(), file.path.c_str());
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(file.content.size()));
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), 0644);
    archive_entry_set_mtime(entry.get(), mtime, 0);
    archive_entry_set_uid(entry.get(), 0);
    archive_entry_set_gid(entry.get(), 0);
    archive_entry_set_uname(entry.get(), "root");
    archive_entry_set_gname(entry.get(), "root");
    if (archive_write_header(writer.get(), entry.get()) != ARCHIVE_OK) {
      return core::MakeError(core::ErrorCode::kInternal, "cannot add '{}' to the archive: {}",
                             file.path, LibarchiveMessage(writer.get()));
    }
    if (!file.content.empty() &&
        archive_write_data(writer.get(), file.content.data(), file.content.size()) !=
            static_cast<la_ssize_t>(file.content.size())) {
      return core::MakeError(core::ErrorCode::kInternal, "cannot write '{}' to the archive: {}",
                             file.path, LibarchiveMessage(writer.get()));
    }
  }
  if (archive_write_close(writer.get()) != ARCHIVE_OK) {
    return core::MakeError(core::ErrorCode::kInternal, "cannot finish the archive: {}",
                           LibarchiveMessage(writer.get()));
  }
  return out;
}

core::Result<std::vector<ArchiveFile>> ReadTarGz(std::string_view bytes, uint64_t max_bytes) {
  std::unique_ptr<archive, ArchiveReaderDeleter> reader(archive_read_new());
  if (!reader) return core::MakeError(core::ErrorCode::kInternal, "archive_read_new failed");
  archive_read_support_filter_gzip(reader.get());
  archive_read_support_format_tar(reader.get());
  if (archive_read_open_memory(reader.get(), bytes.data(), bytes.size()) != ARCHIVE_OK) {
    return core::MakeError(core::ErrorCode::kInvalidArgument,
                           "not a gzip-compressed tar archive: {}",
                           LibarchiveMessage(reader.get()));
  }

  std::vector<ArchiveFile> files;
  std::set<std::string> seen;
  uint64_t total = 0;
  while (true) {
    archive_entry* entry = nullptr;
    const int status = archive_read_next_header(reader.get(), &entry);
    if (status == ARCHIVE_EOF) break;
    if (status != ARCHIVE_OK) {
      return core::MakeError(core::ErrorCode::kInvalidArgument,
                             "the archive is damaged after {} files: {}", files.size(),
                             LibarchiveMessage(reader.get()));
    }
    const char* raw_path = archive_entry_pathname(entry);
    std::string path = raw_path == nullptr ? "" : raw_path;
    while (path.starts_with("./")) path.erase(0, 2);
    // Folders carry no content, and tools such as GNU tar add them when an auditor repacks a
    // bundle, so they are skipped.
    if (archive_entry_filetype(entry) == AE_IFDIR) continue;
    if (archive_entry_filetype(entry) != AE_IFREG) {
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
      const la_ssize_t read = archive_read_data(reader.get(), buffer, sizeof(buffer));
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
