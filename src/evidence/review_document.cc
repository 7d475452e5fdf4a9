#include "evidence/review_document.h"

#include <cmark-gfm-core-extensions.h>
#include <cmark-gfm-extension_api.h>
#include <cmark-gfm.h>

#include <cstdlib>
#include <memory>
#include <mutex>

#include <fmt/format.h>

#include "evidence/html_escape.h"

namespace backout::evidence {
namespace {

constexpr const char* kExtensions[] = {"table", "strikethrough", "autolink", "tasklist"};

}  // namespace

std::string MarkdownToHtml(std::string_view markdown) {
  // Registration fills a global list, so it runs once.
  static std::once_flag registered;
  std::call_once(registered, [] { cmark_gfm_core_extensions_ensure_registered(); });

  const int options = CMARK_OPT_DEFAULT;
  std::unique_ptr<cmark_parser, decltype(&cmark_parser_free)> parser(cmark_parser_new(options),
                                                                     &cmark_parser_free);
  for (const char* name : kExtensions) {
    if (cmark_syntax_extension* extension = cmark_find_syntax_extension(name)) {
      cmark_parser_attach_syntax_extension(parser.get(), extension);
    }
  }
  cmark_parser_feed(parser.get(), markdown.data(), markdown.size());
  std::unique_ptr<cmark_node, decltype(&cmark_node_free)> document(
      cmark_parser_finish(parser.get()), &cmark_node_free);
  char* html =
      cmark_render_html(document.get(), options, cmark_parser_get_syntax_extensions(parser.get()));
  std::string out = html != nullptr ? html : "";
  std::free(html);
  return out;
}

std::string HtmlPage(std::string_view title, std::string_view fragment) {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n"
      "<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}"
      "table{{border-collapse:collapse}}th,td{{border:1px solid #ccc;padding:.25rem .5rem;"
      "text-align:left;vertical-align:top}}code{{background:#f4f4f4}}</style>\n</head>\n<body>\n"
      "{}</body>\n</html>\n",
      internal::EscapeHtml(title), fragment);
}

std::string ReviewForBundle(std::string_view markdown, std::string_view owner,
                            std::string_view status) {
  return fmt::format("> Review owner: {} · status: {}\n\n{}", owner.empty() ? "not set" : owner,
                     status.empty() ? "draft" : status, markdown);
}

}  // namespace backout::evidence
