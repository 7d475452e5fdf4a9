#include "evidence/chart.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "evidence/html_escape.h"

namespace backout::evidence::internal {
namespace {

using nlohmann::json;

constexpr double kWidth = 800;
constexpr double kHeight = 320;
constexpr double kLeft = 70;
constexpr double kRight = 20;
constexpr double kTop = 40;
constexpr double kBottom = 60;
constexpr int kTicks = 5;

constexpr const char* kSeriesColors[] = {"#1f77b4", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"};

struct Series {
  std::string label;
  std::vector<std::pair<double, double>> points;  // seconds since 1970, value
};

double Seconds(core::Time time) {
  return std::chrono::duration<double>(time.time_since_epoch()).count();
}

std::string UtcClock(double seconds) {
  const auto time = std::chrono::sys_seconds(std::chrono::seconds(std::llround(seconds)));
  const auto day = std::chrono::floor<std::chrono::days>(time);
  const std::chrono::hh_mm_ss clock(time - day);
  return fmt::format("{:02}:{:02}:{:02}", clock.hours().count(), clock.minutes().count(),
                     clock.seconds().count());
}

std::string UtcDate(double seconds) {
  const auto time = std::chrono::sys_seconds(std::chrono::seconds(std::llround(seconds)));
  const std::chrono::year_month_day date(std::chrono::floor<std::chrono::days>(time));
  return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(date.year()),
                     static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()));
}

// A sample value as Prometheus writes it: a string, with "NaN" and "+Inf" possible.
std::optional<double> SampleValue(const json& value) {
  if (value.is_number()) return value.get<double>();
  if (!value.is_string()) return std::nullopt;
  try {
    const double parsed = std::stod(value.get<std::string>());
    if (!std::isfinite(parsed)) return std::nullopt;
    return parsed;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::vector<Series> ReadSeries(const json& response) {
  json body = response;
  if (body.is_string()) body = json::parse(body.get<std::string>(), nullptr, false);
  std::vector<Series> series;
  if (!body.is_object()) return series;
  const json data = body.value("data", json());
  if (!data.is_object() || data.value("resultType", "") != "matrix") return series;
  for (const json& item : data.value("result", json::array())) {
    Series one;
    const json metric = item.value("metric", json::object());
    std::vector<std::string> labels;
    for (const auto& [name, value] : metric.items()) {
      labels.push_back(
          fmt::format("{}={}", name, value.is_string() ? value.get<std::string>() : value.dump()));
    }
    one.label = labels.empty() ? "series" : fmt::format("{{{}}}", fmt::join(labels, ", "));
    for (const json& sample : item.value("values", json::array())) {
      if (!sample.is_array() || sample.size() != 2 || !sample[0].is_number()) continue;
      auto value = SampleValue(sample[1]);
      if (value) one.points.emplace_back(sample[0].get<double>(), *value);
    }
    if (!one.points.empty()) series.push_back(std::move(one));
  }
  return series;
}

}  // namespace

std::optional<std::string> RenderSeriesSvg(const json& response, std::string_view title,
                                           std::optional<double> threshold,
                                           const ChartMarks& marks) {
  const std::vector<Series> series = ReadSeries(response);
  if (series.empty()) return std::nullopt;

  // Step 1: the ranges, wide enough for every sample, mark and the threshold.
  double t0 = series.front().points.front().first, t1 = t0;
  double v0 = 0, v1 = 0;
  for (const Series& one : series) {
    for (const auto& [t, v] : one.points) {
      t0 = std::min(t0, t), t1 = std::max(t1, t);
      v0 = std::min(v0, v), v1 = std::max(v1, v);
    }
  }
  for (const auto& mark : {marks.change, marks.rollback, marks.recovery}) {
    if (mark) t0 = std::min(t0, Seconds(*mark)), t1 = std::max(t1, Seconds(*mark));
  }
  if (threshold) v1 = std::max(v1, *threshold), v0 = std::min(v0, *threshold);
  if (t1 <= t0) t1 = t0 + 60;
  if (v1 <= v0) v1 = v0 + 1;
  v1 += (v1 - v0) * 0.1;

  const double plot_width = kWidth - kLeft - kRight;
  const double plot_height = kHeight - kTop - kBottom;
  auto x = [&](double t) { return kLeft + (t - t0) / (t1 - t0) * plot_width; };
  auto y = [&](double v) { return kTop + plot_height - (v - v0) / (v1 - v0) * plot_height; };

  // Step 2: frame, title and axes with UTC ticks.
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" font-size=\"11\">\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"20\" font-size=\"13\">{3}</text>\n",
      kWidth, kHeight, kLeft, EscapeHtml(title));
  svg += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" "
      "stroke=\"#999\"/>\n",
      kLeft, kTop, plot_width, plot_height);
  for (int i = 0; i <= kTicks; ++i) {
    const double t = t0 + (t1 - t0) * i / kTicks;
    const double v = v0 + (v1 - v0) * i / kTicks;
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", x(t),
                       kTop + plot_height + 16, UtcClock(t));
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{:.3g}</text>\n",
                       kLeft - 6, y(v) + 4, v);
  }
  svg += fmt::format(
      "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">time (UTC), {} to "
      "{}</text>\n",
      kLeft + plot_width / 2, kHeight - 22, UtcDate(t0), UtcDate(t1));

  // Step 3: the threshold, the marks and the series.
  if (threshold) {
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{2:.1f}\" x2=\"{1:.1f}\" y2=\"{2:.1f}\" "
        "stroke=\"#d62728\" stroke-dasharray=\"6 4\"/>\n"
        "<text x=\"{1:.1f}\" y=\"{3:.1f}\" text-anchor=\"end\" fill=\"#d62728\">"
        "threshold {4:.3g}</text>\n",
        kLeft, kLeft + plot_width, y(*threshold), y(*threshold) - 4, *threshold);
  }
  const std::pair<const std::optional<core::Time>*, std::pair<const char*, const char*>>
      mark_styles[] = {{&marks.change, {"change", "#ff7f0e"}},
                       {&marks.rollback, {"rollback", "#1f77b4"}},
                       {&marks.recovery, {"recovery", "#2ca02c"}}};
  // Each mark's label sits on its own line, so marks close in time do not overlap, and a mark in
  // the right half is labelled on its left, so the label stays inside the frame.
  int mark_line = 0;
  for (const auto& [mark, style] : mark_styles) {
    if (!*mark) continue;
    const double mx = x(Seconds(**mark));
    const bool label_left = mx > kLeft + plot_width / 2;
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" "
        "stroke=\"{3}\" stroke-dasharray=\"3 3\"/>\n"
        "<text x=\"{4:.1f}\" y=\"{5:.1f}\" fill=\"{3}\"{8}>{6} {7}</text>\n",
        mx, kTop, kTop + plot_height, style.second, label_left ? mx - 3 : mx + 3,
        kTop + 12 + 13.0 * mark_line, style.first, UtcClock(Seconds(**mark)),
        label_left ? " text-anchor=\"end\"" : "");
    ++mark_line;
  }
  for (size_t i = 0; i < series.size(); ++i) {
    const char* color = kSeriesColors[i % std::size(kSeriesColors)];
    std::string points;
    for (const auto& [t, v] : series[i].points) {
      points += fmt::format("{}{:.1f},{:.1f}", points.empty() ? "" : " ", x(t), y(v));
    }
    svg += fmt::format(
        "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" "
        "points=\"{}\"/>\n",
        color, points);
    if (i < 3) {
      svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"{}\">{}</text>\n",
                         kLeft + 250.0 * static_cast<double>(i), kHeight - 6, color,
                         EscapeHtml(series[i].label.substr(0, 40)));
    }
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace backout::evidence::internal
