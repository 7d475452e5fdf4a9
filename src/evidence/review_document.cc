#include "evidence/review_document.h"

#include <cmark-gfm-core-extensions.h>
#include <cmark-gfm-extension_api.h>
#include <cmark-gfm.h>

#include <cstdlib>
#include <memory>

#include <fmt/format.h>

#include "core/shared_library.h"
#include "evidence/html_escape.h"

namespace backout::evidence {
namespace {

constexpr const char* kExtensions[] = {"table", "strikethrough", "autolink", "tasklist"};

// Every function of libcmark-gfm this file calls.
#define BACKOUT_CMARK_FUNCTIONS(X)        \
  X(cmark_parser_new)                     \
  X(cmark_parser_free)                    \
  X(cmark_find_syntax_extension)          \
  X(cmark_parser_attach_syntax_extension) \
  X(cmark_parser_feed)                    \
  X(cmark_parser_finish)                  \
  X(cmark_parser_get_syntax_extensions)   \
  X(cmark_render_html)                    \
  X(cmark_node_free)

// Every function of libcmark-gfm-extensions this file calls.
#define BACKOUT_CMARK_EXTENSIONS_FUNCTIONS(X) X(cmark_gfm_core_extensions_ensure_registered)

struct Cmark {
  BACKOUT_CMARK_FUNCTIONS(BACKOUT_LIBRARY_FUNCTION)
  BACKOUT_CMARK_EXTENSIONS_FUNCTIONS(BACKOUT_LIBRARY_FUNCTION)
};

// Loads cmark-gfm and its extensions library and registers the GFM extensions on the first call,
// and returns the same result on later calls. Only review pages and evidence reports render
// Markdown, so the binary does not link either library.
const core::Result<Cmark>& LoadFunctions() {
  static const core::Result<Cmark> loaded = []() -> core::Result<Cmark> {
    constexpr const char* kPurpose = "rendering post-incident reviews to HTML";
    Cmark functions;
    {
      auto opened =
          core::SharedLibrary::Open(BACKOUT_CMARK_GFM_SONAME, BACKOUT_CMARK_GFM_PACKAGE, kPurpose);
      if (!opened) return std::unexpected(opened.error());
      core::SharedLibrary& library = *opened;
      BACKOUT_CMARK_FUNCTIONS(BACKOUT_RESOLVE_FUNCTION)
      if (auto resolved = library.CheckResolved(); !resolved) {
        return std::unexpected(resolved.error());
      }
    }
    {
      auto opened = core::SharedLibrary::Open(BACKOUT_CMARK_GFM_EXTENSIONS_SONAME,
                                              BACKOUT_CMARK_GFM_EXTENSIONS_PACKAGE, kPurpose);
      if (!opened) return std::unexpected(opened.error());
      core::SharedLibrary& library = *opened;
      BACKOUT_CMARK_EXTENSIONS_FUNCTIONS(BACKOUT_RESOLVE_FUNCTION)
      if (auto resolved = library.CheckResolved(); !resolved) {
        return std::unexpected(resolved.error());
      }
    }
    // Registration fills a global list of libcmark-gfm, so it runs once.
    functions.cmark_gfm_core_extensions_ensure_registered();
    return functions;
  }();
  return loaded;
}

}  // namespace

core::Result<void> LoadCmarkGfm() {
  const core::Result<Cmark>& loaded = LoadFunctions();
  if (!loaded) return std::unexpected(loaded.error());
  return {};
}

core::Result<std::string> MarkdownToHtml(std::string_view markdown) {
  const core::Result<Cmark>& loaded = LoadFunctions();
  if (!loaded) return std::unexpected(loaded.error());
  const Cmark& cmark = *loaded;

  const int options = CMARK_OPT_DEFAULT;
  std::unique_ptr<cmark_parser, decltype(cmark.cmark_parser_free)> parser(
      cmark.cmark_parser_new(options), cmark.cmark_parser_free);
  for (const char* name : kExtensions) {
    if (cmark_syntax_extension* extension = cmark.cmark_find_syntax_extension(name)) {
      cmark.cmark_parser_attach_syntax_extension(parser.get(), extension);
    }
  }
  cmark.cmark_parser_feed(parser.get(), markdown.data(), markdown.size());
  std::unique_ptr<cmark_node, decltype(cmark.cmark_node_free)> document(
      cmark.cmark_parser_finish(parser.get()), cmark.cmark_node_free);
  char* html = cmark.cmark_render_html(document.get(), options,
                                       cmark.cmark_parser_get_syntax_extensions(parser.get()));
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
