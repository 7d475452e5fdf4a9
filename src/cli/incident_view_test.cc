#include "cli/incident_view.h"

#include <gtest/gtest.h>

namespace backout::cli {
namespace {

const Json kIncident = Json::parse(R"({
  "id": "INC-1", "service": "checkout", "severity": "sev2", "title": "errors", "state": "closed",
  "assessment": {"target_version": "v1", "digest": "ab12", "plan": {"summary": "run rollback.sh"},
                 "preconditions": [{"name": "x", "satisfied": true}]},
  "decisions": [{"time": "T1", "decider": "lead-1", "kind": "go", "reason": "ok",
                 "retroactive": false}],
  "rollbacks": [],
  "timeline": [{"time": "T0", "actor": "lead-1", "kind": "opened", "detail": "opened sev2"}],
  "review_markdown": "# Review\nlong text",
  "review_written_by": "lead-1", "review_written_at": "T9"
})");

TEST(IncidentViewTest, StartsWithSummary) {
  const std::string view = RenderIncidentView(kIncident);
  EXPECT_TRUE(view.starts_with("id:       INC-1\nservice:  checkout\n")) << view;
}

TEST(IncidentViewTest, ShowsAssessmentTargetAndPlanSummary) {
  const std::string view = RenderIncidentView(kIncident);
  EXPECT_NE(view.find("assessment:\n  target_version: v1\n"), std::string::npos) << view;
  EXPECT_NE(view.find("  plan:           run rollback.sh\n"), std::string::npos) << view;
  EXPECT_EQ(view.find("preconditions"), std::string::npos) << view;
}

TEST(IncidentViewTest, TabulatesDecisionsAndTimeline) {
  const std::string view = RenderIncidentView(kIncident);
  EXPECT_NE(view.find("decisions:\n  TIME  DECIDER  KIND  RETROACTIVE  REASON\n"
                      "  T1    lead-1   go    false        ok\n"),
            std::string::npos)
      << view;
  EXPECT_NE(view.find("timeline:\n  TIME  ACTOR   EVENT   DETAIL\n"), std::string::npos) << view;
}

TEST(IncidentViewTest, LeavesOutEmptySections) {
  EXPECT_EQ(RenderIncidentView(kIncident).find("rollbacks:"), std::string::npos);
}

TEST(IncidentViewTest, PointsToReviewInsteadOfPrintingIt) {
  const std::string view = RenderIncidentView(kIncident);
  EXPECT_EQ(view.find("long text"), std::string::npos) << view;
  EXPECT_NE(view.find("review: written by lead-1 at T9; print it with `backout review show INC-1`"),
            std::string::npos)
      << view;
}

}  // namespace
}  // namespace backout::cli
