#pragma once

// Correlation of a signal with the change that most likely caused it. Pure: the caller passes
// the changes and the options, and the result names every candidate with its score and reason.

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/domain.h"
#include "core/time.h"

namespace backout::signals {

// What correlation needs to know about one signal.
struct SignalFacts {
  std::string service;     // empty when the signal names no service
  core::Time starts_at{};  // when the condition began, as the source reports it
  // A change id the signal itself names (the alert's `change_id` label or annotation).
  std::string named_change_id;
};

struct CorrelationOptions {
  // A change is a candidate while the signal starts within this long after it.
  core::Duration watch_window = std::chrono::minutes(30);
  // The best candidate becomes the suspected change only with at least this score.
  double min_score = 0.5;
};

struct Candidate {
  std::string change_id;
  std::string service;
  core::Time deployed_at{};
  double score = 0;  // 0 for a change that was ruled out
  std::string reason;
};

struct Correlation {
  std::optional<std::string> suspected_change_id;
  double score = 0;
  std::string reason;  // why the suspect was chosen, or why none was
  std::vector<Candidate> candidates;
};

// Scores the candidates: `own_changes` of the signal's service and `dependency_changes` of the
// services it depends on. A change made after the signal started is never a candidate, because
// the condition was already there before it. A change older than the watch window is not one
// either. A change of the service itself starts at 1.0 and a dependency's at 0.6, and both lose
// up to half their score as the gap between change and signal grows to the window. A change the
// signal names is chosen when it is a candidate at all. Changes marked `bad` by a verification
// keep their score; changes validated `good` lose a quarter of it.
Correlation Correlate(const SignalFacts& signal, std::span<const core::Change> own_changes,
                      std::span<const core::Change> dependency_changes,
                      const CorrelationOptions& options);

}  // namespace backout::signals
