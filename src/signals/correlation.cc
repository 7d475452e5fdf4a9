#include "signals/correlation.h"

#include <algorithm>

#include <fmt/format.h>

namespace backout::signals {
namespace {

constexpr double kOwnServiceWeight = 1.0;
constexpr double kDependencyWeight = 0.6;

Candidate Score(const SignalFacts& signal, const core::Change& change, double weight,
                const CorrelationOptions& options) {
  Candidate candidate{
      .change_id = change.id, .service = change.service, .deployed_at = change.time};
  if (change.time > signal.starts_at) {
    candidate.reason = fmt::format(
        "ruled out: the signal started at {}, before change {} at {}, so the change did not "
        "cause it",
        core::FormatTime(signal.starts_at), change.id, core::FormatTime(change.time));
    return candidate;
  }
  const core::Duration gap = signal.starts_at - change.time;
  if (gap > options.watch_window) {
    candidate.reason = fmt::format(
        "ruled out: the signal started {} s after change {}, outside the {} s watch window",
        std::chrono::duration_cast<std::chrono::seconds>(gap).count(), change.id,
        std::chrono::duration_cast<std::chrono::seconds>(options.watch_window).count());
    return candidate;
  }

  const double fraction = options.watch_window.count() > 0
                              ? static_cast<double>(gap.count()) / options.watch_window.count()
                              : 0.0;
  double score = weight * (1.0 - 0.5 * fraction);
  std::string relation =
      weight == kOwnServiceWeight
          ? fmt::format("a change of {} itself", change.service)
          : fmt::format("a change of {}, which {} depends on", change.service, signal.service);
  std::string validated;
  if (change.validated == core::ChangeValidation::kGood) {
    score *= 0.75;
    validated = "; it was validated good, which lowers the score";
  }
  if (!signal.named_change_id.empty() && signal.named_change_id == change.id) {
    score = std::max(score, 1.0) + 1.0;
    validated += "; the signal names this change";
  }
  candidate.score = score;
  candidate.reason = fmt::format(
      "{} deployed {} s before the signal started ({} -> {}){}", relation,
      std::chrono::duration_cast<std::chrono::seconds>(gap).count(),
      change.previous_version.empty() ? "?" : change.previous_version, change.version, validated);
  return candidate;
}

}  // namespace

Correlation Correlate(const SignalFacts& signal, std::span<const core::Change> own_changes,
                      std::span<const core::Change> dependency_changes,
                      const CorrelationOptions& options) {
  Correlation result;
  if (signal.service.empty()) {
    result.reason = "the signal names no service, so no change can be attributed to it";
    return result;
  }
  for (const core::Change& change : own_changes) {
    result.candidates.push_back(Score(signal, change, kOwnServiceWeight, options));
  }
  for (const core::Change& change : dependency_changes) {
    result.candidates.push_back(Score(signal, change, kDependencyWeight, options));
  }
  // Highest score first; among equal scores the later change.
  std::ranges::stable_sort(result.candidates, [](const Candidate& a, const Candidate& b) {
    if (a.score != b.score) return a.score > b.score;
    return a.deployed_at > b.deployed_at;
  });

  if (result.candidates.empty()) {
    result.reason =
        fmt::format("no change of {} or of its dependencies is recorded", signal.service);
    return result;
  }
  const Candidate& best = result.candidates.front();
  if (best.score < options.min_score) {
    result.reason =
        best.score == 0
            ? fmt::format(
                  "no change of {} or of its dependencies was deployed within the watch "
                  "window before the signal started",
                  signal.service)
            : fmt::format("the best candidate {} scores {:.2f}, below the threshold {:.2f}",
                          best.change_id, best.score, options.min_score);
    return result;
  }
  result.suspected_change_id = best.change_id;
  result.score = best.score;
  result.reason =
      fmt::format("suspected {} (score {:.2f}): {}", best.change_id, best.score, best.reason);
  return result;
}

}  // namespace backout::signals
