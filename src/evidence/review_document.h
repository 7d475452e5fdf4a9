#pragma once

#include <string>
#include <string_view>

// The post-incident review as a document: its Markdown rendered to HTML, and the copy that goes
// into evidence bundles with its owner and status.
namespace backout::evidence {

// Renders GitHub-flavoured Markdown to an HTML fragment with cmark-gfm and its table,
// strikethrough, autolink and task-list extensions. Raw HTML in the input is not passed
// through (cmark-gfm's safe default), so a review cannot inject script into a report.
// Thread-safe.
std::string MarkdownToHtml(std::string_view markdown);

// Wraps an HTML fragment into a self-contained page titled `title`.
std::string HtmlPage(std::string_view title, std::string_view fragment);

// Returns the review as review.md stores it: a quoted line with the owner and status, then the
// Markdown. Empty owner and status (a review written before they existed) read "not set" and
// "draft".
std::string ReviewForBundle(std::string_view markdown, std::string_view owner,
                            std::string_view status);

}  // namespace backout::evidence
