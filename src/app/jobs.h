#pragma once

// Names and payload fields of the durable jobs the use cases enqueue and the workers run.
namespace backout::app {

inline constexpr char kRollbackJob[] = "rollback";
inline constexpr char kValidationJob[] = "validation";
// Correlates new signals with changes and applies the automatic policy (signals.cc).
inline constexpr char kSignalCorrelationJob[] = "signal_correlation";

// Steps of a rollback job, in order. "executing" is written before the provider is called, so a
// job found at that step after a restart was mid-action and must be resumed, never re-run.
inline constexpr char kStepPlanCheck[] = "plan_check";
inline constexpr char kStepExecute[] = "execute";
inline constexpr char kStepExecuting[] = "executing";
inline constexpr char kStepWait[] = "wait";
inline constexpr char kStepReadBack[] = "read_back";
inline constexpr char kStepDone[] = "done";

}  // namespace backout::app
