#pragma once

// Charts of a Prometheus check's recorded series, for the bundle's report. Not part of the
// module's interface.

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/time.h"

namespace backout::evidence::internal {

// Moments drawn as vertical lines across the chart.
struct ChartMarks {
  std::optional<core::Time> change;    // the suspected change was deployed
  std::optional<core::Time> rollback;  // the rollback started
  std::optional<core::Time> recovery;  // the validation found recovery
};

// Draws the series of a recorded Prometheus query_range response as SVG: a UTC time axis, one
// line per series, the marks, and the threshold as a horizontal line when `threshold` is set.
// `response` is the response body as an object or as its JSON text. Returns nothing when it
// contains no matrix result with samples. The same input always gives the same text.
std::optional<std::string> RenderSeriesSvg(const nlohmann::json& response, std::string_view title,
                                           std::optional<double> threshold,
                                           const ChartMarks& marks);

}  // namespace backout::evidence::internal
