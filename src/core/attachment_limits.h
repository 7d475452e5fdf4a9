#pragma once

#include <cstddef>

namespace backout::core {

// The maximum attachment content of one `incident document` request, summed over its
// attachments, in bytes. It is the same 10 MiB as a check confirmation's attachment
// (kMaxConfirmationAttachmentBytes). The server rejects a larger total, and the CLI checks each
// file's size before reading it.
inline constexpr std::size_t kMaxDocumentAttachmentBytes = std::size_t{10} << 20;

// The length of `bytes` bytes in padded base64: 4 characters for every 3 bytes or part of them.
constexpr std::size_t Base64Length(std::size_t bytes) { return (bytes + 2) / 3 * 4; }

}  // namespace backout::core
