#pragma once

#include <string>
#include <string_view>

#include "core/error.h"

// The post-incident review as a document: its Markdown rendered to HTML, and the copy that goes
// into evidence bundles with its owner and status.
namespace backout::evidence {

// Loads cmark-gfm and its extensions library with dlopen, resolves the functions that
// MarkdownToHtml calls and registers the extensions. Only the first call in a process does this,
// and later calls return its result. MarkdownToHtml calls it first, so another caller needs it
// only to get the error early. Fails with kUnavailable, naming the library and its Debian package,
// when either library is missing or lacks a function.
core::Result<void> LoadCmarkGfm();

// Renders GitHub-flavoured Markdown to an HTML fragment with cmark-gfm and its table,
// strikethrough, autolink and task-list extensions. Raw HTML in the input is not passed
// through (cmark-gfm's safe default), so a review cannot inject script into a report.
// Fails only when LoadCmarkGfm fails. Thread-safe.
core::Result<std::string> MarkdownToHtml(std::string_view markdown);

// Wraps an HTML fragment into a self-contained page titled `title`.
std::string HtmlPage(std::string_view title, std::string_view fragment);

// Returns the review as review.md stores it: a quoted line with the owner and status, then the
// Markdown. Empty owner and status (a review written before they existed) read "not set" and
// "draft".
std::string ReviewForBundle(std::string_view markdown, std::string_view owner,
                            std::string_view status);

}  // namespace backout::evidence
