#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cli/json.h"
#include "core/error.h"

namespace backout::cli {

// How a command prints the server's response (`-o table|json|yaml`).
enum class OutputFormat { kTable, kJson, kYaml };

// Parses "table", "json" or "yaml".
core::Result<OutputFormat> ParseOutputFormat(std::string_view text);

// One column of a table: its header and where its value sits in each item, either a top-level key
// ("state") or a JSON pointer ("/provider/kind").
struct Column {
  std::string header;
  std::string field;
};

// Formats one JSON value for a table cell: strings as they are, null as "-", arrays of scalars
// joined by commas, objects as compact JSON.
std::string FormatCell(const Json& value);

// Formats the newest `shown` items of `values`, a JSON array ordered oldest first, for one table
// cell: newest first, joined by commas, with "+N more" naming the items left out. A value that is
// not an array is formatted by FormatCell.
std::string FormatNewest(const Json& values, size_t shown);

// Renders `items` (a JSON array of objects) as left-aligned columns under a header row, one item
// a line, with two spaces between columns. An empty list renders as "(none)".
std::string RenderTable(const Json& items, const std::vector<Column>& columns);

// Renders one object as `key: value` lines with the values aligned. Nested objects are indented
// under their key; arrays of objects become an indented table of their scalar fields.
std::string RenderObject(const Json& object);

// Prefixes every non-empty line of `text` with `spaces` spaces.
std::string IndentText(std::string_view text, int spaces);

// Renders any JSON value as block-style YAML through yaml-cpp's emitter.
std::string RenderYaml(const Json& value);

// Renders a list response in `format`: a table of `columns`, or the whole items array.
std::string RenderList(const Json& items, const std::vector<Column>& columns, OutputFormat format);

// Renders a single-object response in `format`.
std::string RenderSingle(const Json& object, OutputFormat format);

}  // namespace backout::cli
