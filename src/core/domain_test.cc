#include "core/domain.h"

#include <string>

#include <gtest/gtest.h>

namespace backout::core {
namespace {

using nlohmann::json;

Time At(std::string_view text) { return ParseTime(text).value(); }

bool Contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// Writes `value` as JSON, reads it back, and checks both the value and the re-written JSON.
template <typename T>
void ExpectRoundTrip(const T& value) {
  const json written = value;
  const auto back = FromJson<T>(written);
  ASSERT_TRUE(back.has_value()) << back.error().message << "\n" << written.dump(2);
  EXPECT_EQ(json(*back), written);
  EXPECT_TRUE(*back == value) << written.dump(2);
}

// Samples with every field set away from its default.

User SampleUser() {
  return User{"sre-1", {Role::kDevopsEngineer, Role::kViewer}, {"checkout", "payments"}, false};
}

Migration SampleMigration() { return Migration{"042_drop_column", false}; }

Verification SampleVerification() {
  return Verification{true, "ci", At("2026-03-01T09:30:00.250000Z"), "https://ci/run/7"};
}

Change SampleChange() {
  Change change;
  change.id = "CHG-3";
  change.service = "checkout";
  change.environment = "production";
  change.version = "v3";
  change.previous_version = "v2";
  change.external_ticket = "JIRA-12";
  change.approver = "lead-1";
  change.deployer = "sre-2";
  change.time = At("2026-03-01T09:00:00Z");
  change.risk = "high";
  change.migrations = {SampleMigration(), Migration{"043_add_index", true}};
  change.source = ChangeSource::kDiscovered;
  change.recorded_by = "ci";
  change.validated = ChangeValidation::kBad;
  change.verification = SampleVerification();
  return change;
}

Trigger SampleTrigger() {
  return Trigger{"alertmanager", "group checkout-errors", json{{"alerts", json::array({1, 2})}}};
}

TimelineEvent SampleEvent() {
  return TimelineEvent{At("2026-03-01T10:00:00Z"), "lead-1", "opened", "error rate 40%"};
}

Attachment SampleAttachment() {
  return Attachment{"pod.log", std::string(64, 'a'), 12345, "sre-1", At("2026-03-01T11:00:00Z")};
}

DataImplication SampleImplication() {
  return DataImplication{"CHG-3", "042_drop_column", false, true, "drops column total"};
}

Precondition SamplePrecondition() {
  return Precondition{"deployment not paused", true, "spec.paused=false"};
}

Assessment SampleAssessment() {
  Assessment assessment;
  assessment.service = "payments";
  assessment.affected_services = {"checkout", "payments"};
  assessment.customer_facing = true;
  assessment.target_version = "v2";
  assessment.target_change_id = "CHG-2";
  assessment.target_rule = "last validated-good change before the suspected one: CHG-2";
  assessment.data_implications = {SampleImplication()};
  assessment.preconditions = {SamplePrecondition()};
  assessment.expected_downtime = std::chrono::seconds(90);
  assessment.plan = json{{"run", {"/opt/runbooks/rollback", "--fast"}}, {"env", {{"V", "v2"}}}};
  assessment.assessed_by = "lead-1";
  assessment.assessed_at = At("2026-03-01T10:05:00Z");
  assessment.digest = std::string(64, 'b');
  return assessment;
}

Decision SampleDecision() {
  return Decision{
      DecisionKind::kNoGo, "lead-1", At("2026-03-01T10:10:00Z"), "forward fix", "digest",
      "migration ok",      true};
}

Confirmation SampleConfirmation() {
  return Confirmation{true, "sre-1", At("2026-03-01T10:30:00Z"), "saw v2 live"};
}

Rollback SampleRollback() {
  Rollback rollback;
  rollback.job_id = "JOB-4";
  rollback.plan_digest = "digest";
  rollback.provider = "command";
  rollback.target_version = "v2";
  rollback.target_rule = "provider rule";
  rollback.approver = "lead-1";
  rollback.executor = "sre-1";
  rollback.emergency = true;
  rollback.emergency_reason = "site down";
  rollback.requested_at = At("2026-03-01T10:11:00Z");
  rollback.started_at = At("2026-03-01T10:11:01Z");
  rollback.finished_at = At("2026-03-01T10:12:00Z");
  rollback.outcome = RollbackOutcome::kRevertedByController;
  rollback.message = "argo synced back";
  rollback.transcript_ref = "transcripts/JOB-4";
  rollback.read_back = json{{"revision", 7}};
  rollback.confirmation = SampleConfirmation();
  return rollback;
}

Observation SampleObservation() {
  return Observation{"smoke", "command", ObservationResult::kFailed, "exit 1",
                     At("2026-03-01T10:20:00Z")};
}

Validation SampleValidation() {
  Validation validation;
  validation.job_id = "JOB-5";
  validation.rollback_job_id = "JOB-4";
  validation.requested_by = "lead-1";
  validation.started_at = At("2026-03-01T10:19:00Z");
  validation.finished_at = At("2026-03-01T10:21:00Z");
  validation.observations = {SampleObservation()};
  validation.finding = ValidationFinding::kNotValidated;
  return validation;
}

ActionItem SampleActionItem() {
  ActionItem item;
  item.id = "AI-1";
  item.incident_id = "INC-1";
  item.title = "Add schema check";
  item.owner = "sre-2";
  item.due = ParseDate("2026-04-30").value();
  item.status = ActionItemStatus::kNotDoing;
  item.evidence_link = "https://git/pr/9";
  item.reason = "superseded";
  item.created_by = "lead-1";
  item.created_at = At("2026-03-02T09:00:00Z");
  item.completed_at = At("2026-03-10T09:00:00Z");
  item.completed_by = "sre-2";
  return item;
}

Incident SampleIncident() {
  Incident incident;
  incident.id = "INC-1";
  incident.service = "checkout";
  incident.environment = "production";
  incident.severity = Severity::kSev1;
  incident.title = "Checkout errors";
  incident.state = IncidentState::kDocumenting;
  incident.suspected_change_id = "CHG-3";
  incident.suspected_change_reason = "deployed 5 minutes before the alert";
  incident.external_ticket = "JIRA-13";
  incident.trigger = SampleTrigger();
  incident.opened_by = "lead-1";
  incident.opened_at = At("2026-03-01T10:00:00Z");
  incident.assessment = SampleAssessment();
  incident.decisions = {SampleDecision()};
  incident.rollbacks = {SampleRollback()};
  incident.validations = {SampleValidation()};
  incident.root_cause = "timeout set to 0";
  incident.contributing_factors = {"no config schema", "alert too slow"};
  incident.attachments = {SampleAttachment()};
  incident.review_markdown = "# Review";
  incident.review_written_by = "lead-1";
  incident.review_written_at = At("2026-03-02T08:00:00Z");
  incident.action_items = {SampleActionItem()};
  incident.no_action_reason = "n/a";
  incident.emergency = true;
  incident.timeline = {SampleEvent()};
  incident.closed_by = "lead-2";
  incident.closed_at = At("2026-03-03T08:00:00Z");
  return incident;
}

// ---- Round trips ----------------------------------------------------------------------------

TEST(DomainJsonTest, UserRoundTrips) { ExpectRoundTrip(SampleUser()); }
TEST(DomainJsonTest, MigrationRoundTrips) { ExpectRoundTrip(SampleMigration()); }
TEST(DomainJsonTest, VerificationRoundTrips) { ExpectRoundTrip(SampleVerification()); }
TEST(DomainJsonTest, ChangeRoundTrips) { ExpectRoundTrip(SampleChange()); }
TEST(DomainJsonTest, TriggerRoundTrips) { ExpectRoundTrip(SampleTrigger()); }
TEST(DomainJsonTest, TimelineEventRoundTrips) { ExpectRoundTrip(SampleEvent()); }
TEST(DomainJsonTest, AttachmentRoundTrips) { ExpectRoundTrip(SampleAttachment()); }
TEST(DomainJsonTest, DataImplicationRoundTrips) { ExpectRoundTrip(SampleImplication()); }
TEST(DomainJsonTest, PreconditionRoundTrips) { ExpectRoundTrip(SamplePrecondition()); }
TEST(DomainJsonTest, AssessmentRoundTrips) { ExpectRoundTrip(SampleAssessment()); }
TEST(DomainJsonTest, DecisionRoundTrips) { ExpectRoundTrip(SampleDecision()); }
TEST(DomainJsonTest, ConfirmationRoundTrips) { ExpectRoundTrip(SampleConfirmation()); }
TEST(DomainJsonTest, RollbackRoundTrips) { ExpectRoundTrip(SampleRollback()); }
TEST(DomainJsonTest, ObservationRoundTrips) { ExpectRoundTrip(SampleObservation()); }
TEST(DomainJsonTest, ValidationRoundTrips) { ExpectRoundTrip(SampleValidation()); }
TEST(DomainJsonTest, ActionItemRoundTrips) { ExpectRoundTrip(SampleActionItem()); }
TEST(DomainJsonTest, IncidentRoundTrips) { ExpectRoundTrip(SampleIncident()); }

TEST(DomainJsonTest, DefaultsRoundTrip) {
  ExpectRoundTrip(Change{});
  ExpectRoundTrip(Rollback{});
  ExpectRoundTrip(Incident{});
}

TEST(DomainJsonTest, FieldFormats) {
  const json change = SampleChange();
  EXPECT_EQ(change.at("time"), "2026-03-01T09:00:00.000000Z");
  EXPECT_EQ(change.at("source"), "discovered");
  EXPECT_EQ(change.at("validated"), "bad");

  const json item = SampleActionItem();
  EXPECT_EQ(item.at("due"), "2026-04-30");
  EXPECT_EQ(item.at("status"), "not_doing");

  const json empty_rollback = Rollback{};
  EXPECT_TRUE(empty_rollback.at("outcome").is_null());
  EXPECT_TRUE(empty_rollback.at("finished_at").is_null());

  const json user = SampleUser();
  EXPECT_EQ(user.at("roles"), json({"devops-engineer", "viewer"}));

  const json assessment = SampleAssessment();
  EXPECT_EQ(assessment.at("expected_downtime_seconds"), 90);
}

TEST(DomainJsonTest, EveryEnumNameRoundTrips) {
  for (const auto outcome :
       {RollbackOutcome::kRolledBack, RollbackOutcome::kSkippedNoop,
        RollbackOutcome::kNoRollbackTarget, RollbackOutcome::kPreconditionFailed,
        RollbackOutcome::kPendingApproval, RollbackOutcome::kPartial, RollbackOutcome::kFailed,
        RollbackOutcome::kRevertedByController, RollbackOutcome::kInterrupted}) {
    EXPECT_EQ(ParseRollbackOutcome(RollbackOutcomeName(outcome)).value(), outcome);
  }
  for (const auto role : {Role::kAdmin, Role::kEngineeringLead, Role::kDevopsEngineer,
                          Role::kAuditor, Role::kViewer, Role::kCi}) {
    EXPECT_EQ(ParseRole(RoleName(role)).value(), role);
  }
  for (const auto severity : {Severity::kSev1, Severity::kSev2, Severity::kSev3, Severity::kSev4}) {
    EXPECT_EQ(ParseSeverity(SeverityName(severity)).value(), severity);
  }
  for (const auto state : {IncidentState::kOpen, IncidentState::kAssessing, IncidentState::kDecided,
                           IncidentState::kRollingBack, IncidentState::kValidating,
                           IncidentState::kDocumenting, IncidentState::kClosed}) {
    EXPECT_EQ(ParseIncidentState(IncidentStateName(state)).value(), state);
  }
  for (const auto finding : {ValidationFinding::kRecovered, ValidationFinding::kNotRecovered,
                             ValidationFinding::kNotValidated}) {
    EXPECT_EQ(ParseValidationFinding(ValidationFindingName(finding)).value(), finding);
  }
  for (const auto status :
       {ActionItemStatus::kOpen, ActionItemStatus::kDone, ActionItemStatus::kNotDoing}) {
    EXPECT_EQ(ParseActionItemStatus(ActionItemStatusName(status)).value(), status);
  }
  for (const auto result :
       {ObservationResult::kPassed, ObservationResult::kFailed, ObservationResult::kUnknown}) {
    EXPECT_EQ(ParseObservationResult(ObservationResultName(result)).value(), result);
  }
  for (const auto kind : {DecisionKind::kGo, DecisionKind::kNoGo}) {
    EXPECT_EQ(ParseDecisionKind(DecisionKindName(kind)).value(), kind);
  }
  for (const auto source : {ChangeSource::kRecorded, ChangeSource::kDiscovered}) {
    EXPECT_EQ(ParseChangeSource(ChangeSourceName(source)).value(), source);
  }
  for (const auto validation :
       {ChangeValidation::kUnknown, ChangeValidation::kGood, ChangeValidation::kBad}) {
    EXPECT_EQ(ParseChangeValidation(ChangeValidationName(validation)).value(), validation);
  }
}

// ---- Rejected input -------------------------------------------------------------------------

TEST(DomainJsonTest, SystemRoleCannotBeGranted) {
  const auto role = ParseRole("system");
  ASSERT_FALSE(role.has_value());
  EXPECT_TRUE(Contains(role.error().message, "reserved")) << role.error().message;

  const auto user = FromJson<User>(json{{"name", "x"}, {"roles", {"system"}}});
  ASSERT_FALSE(user.has_value());
  EXPECT_TRUE(Contains(user.error().message, "field roles[0]")) << user.error().message;
}

TEST(DomainJsonTest, UnknownRoleListsValidNames) {
  const auto role = ParseRole("root");
  ASSERT_FALSE(role.has_value());
  EXPECT_EQ(role.error().message,
            "unknown role 'root': expected one of admin, engineering-lead, devops-engineer, "
            "auditor, viewer, ci");
}

TEST(DomainJsonTest, UnknownFieldRejected) {
  json change = SampleChange();
  change["colour"] = "red";
  const auto result = FromJson<Change>(change);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(Contains(result.error().message, "field colour: unknown field"))
      << result.error().message;
}

TEST(DomainJsonTest, WrongTypeNamesField) {
  json change = SampleChange();
  change["migrations"][1]["reversible"] = "yes";
  const auto result = FromJson<Change>(change);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().message,
            "field migrations[1].reversible: expected true or false, got string");
}

TEST(DomainJsonTest, NestedEnumErrorNamesPath) {
  json incident = SampleIncident();
  incident["rollbacks"][0]["outcome"] = "done";
  const auto result = FromJson<Incident>(incident);
  ASSERT_FALSE(result.has_value());
  EXPECT_TRUE(Contains(result.error().message,
                       "field rollbacks[0].outcome: unknown rollback outcome 'done'"))
      << result.error().message;
}

TEST(DomainJsonTest, BadTimeNamesField) {
  json event = SampleEvent();
  event["time"] = "yesterday";
  const auto result = FromJson<TimelineEvent>(event);
  ASSERT_FALSE(result.has_value());
  EXPECT_TRUE(Contains(result.error().message, "field time: invalid time 'yesterday'"))
      << result.error().message;
}

TEST(DomainJsonTest, NonObjectRejected) {
  const auto result = FromJson<Incident>(json::array());
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().message, "expected an object, got array");
}

TEST(DomainJsonTest, NegativeSizeAndFractionRejected) {
  json attachment = SampleAttachment();
  attachment["size"] = 1.5;
  EXPECT_FALSE(FromJson<Attachment>(attachment).has_value());
  json assessment = SampleAssessment();
  assessment["expected_downtime_seconds"] = -1;
  EXPECT_FALSE(FromJson<Assessment>(assessment).has_value());
}

TEST(DomainJsonTest, MissingKeysKeepDefaults) {
  const auto change = FromJson<Change>(json{{"service", "checkout"}, {"version", "v9"}});
  ASSERT_TRUE(change.has_value()) << change.error().message;
  EXPECT_EQ(change->service, "checkout");
  EXPECT_EQ(change->source, ChangeSource::kRecorded);
  EXPECT_EQ(change->validated, ChangeValidation::kUnknown);
  EXPECT_TRUE(change->migrations.empty());
}

// ---- Dates, digests and helpers -------------------------------------------------------------

TEST(DateTest, ParsesAndFormats) {
  const auto date = ParseDate("2028-02-29");
  ASSERT_TRUE(date.has_value()) << date.error().message;
  EXPECT_EQ(FormatDate(*date), "2028-02-29");
  for (const char* text : {"2026-02-29", "2026-13-01", "2026-1-01", "26-01-01", "2026-01-01T"}) {
    EXPECT_FALSE(ParseDate(text).has_value()) << text;
  }
}

TEST(DigestTest, CanonicalFormLeavesOutDigestAndSortsKeys) {
  Assessment assessment = SampleAssessment();
  const auto canonical = CanonicalForDigest(assessment);
  ASSERT_TRUE(canonical.has_value()) << canonical.error().message;
  EXPECT_FALSE(Contains(*canonical, "\"digest\"")) << *canonical;
  EXPECT_TRUE(canonical->starts_with("{\"affected_services\":[\"checkout\",\"payments\"],"))
      << *canonical;

  assessment.digest = "something else";
  EXPECT_EQ(CanonicalForDigest(assessment).value(), *canonical);

  assessment.target_version = "v1";
  EXPECT_NE(CanonicalForDigest(assessment).value(), *canonical);
}

TEST(DigestTest, KeyOrderOfPlanDoesNotMatter) {
  const json first = json::parse(R"({"b": 1, "a": {"d": 2, "c": 3}})");
  const json second = json::parse(R"({"a": {"c": 3, "d": 2}, "b": 1})");
  EXPECT_EQ(CanonicalForDigest(first).value(), CanonicalForDigest(second).value());
  EXPECT_EQ(CanonicalForDigest(first).value(), R"({"a":{"c":3,"d":2},"b":1})");
}

TEST(DigestTest, InvalidUtf8Rejected) {
  Assessment assessment = SampleAssessment();
  assessment.target_rule = "bad \xff byte";
  const auto canonical = CanonicalForDigest(assessment);
  ASSERT_FALSE(canonical.has_value());
  EXPECT_EQ(canonical.error().code, ErrorCode::kInvalidArgument);
}

TEST(IncidentTest, LatestHelpers) {
  Incident incident;
  EXPECT_EQ(incident.LatestDecision(), nullptr);
  EXPECT_EQ(incident.LatestRollback(), nullptr);
  EXPECT_EQ(incident.LatestValidation(), nullptr);

  Decision go = SampleDecision();
  go.kind = DecisionKind::kGo;
  go.retroactive = false;
  Decision retroactive = SampleDecision();
  retroactive.decider = "lead-2";
  retroactive.retroactive = true;
  incident.decisions = {go, retroactive};
  ASSERT_NE(incident.LatestDecision(), nullptr);
  EXPECT_EQ(incident.LatestDecision()->kind, DecisionKind::kGo);
}

TEST(IncidentTest, DecisionInForceIgnoresLaterOnes) {
  const Time t0 = At("2026-12-04T10:00:00Z");
  Incident incident;
  Decision go = SampleDecision();
  go.kind = DecisionKind::kGo;
  go.retroactive = false;
  go.time = t0;
  Decision retroactive = go;
  retroactive.decider = "lead-2";
  retroactive.retroactive = true;
  retroactive.time = t0 + std::chrono::minutes(5);
  Decision no_go = go;
  no_go.kind = DecisionKind::kNoGo;
  no_go.time = t0 + std::chrono::minutes(10);
  incident.decisions = {go, retroactive, no_go};

  EXPECT_EQ(incident.DecisionInForceAt(t0 - std::chrono::seconds(1)), nullptr);
  ASSERT_NE(incident.DecisionInForceAt(t0), nullptr);
  EXPECT_EQ(incident.DecisionInForceAt(t0)->kind, DecisionKind::kGo);
  ASSERT_NE(incident.DecisionInForceAt(t0 + std::chrono::minutes(7)), nullptr);
  EXPECT_EQ(incident.DecisionInForceAt(t0 + std::chrono::minutes(7))->kind, DecisionKind::kGo);
  EXPECT_FALSE(incident.DecisionInForceAt(t0 + std::chrono::minutes(7))->retroactive);
  ASSERT_NE(incident.DecisionInForceAt(t0 + std::chrono::minutes(10)), nullptr);
  EXPECT_EQ(incident.DecisionInForceAt(t0 + std::chrono::minutes(10))->kind, DecisionKind::kNoGo);
}

TEST(UserTest, RoleAndServiceLookups) {
  const User user = SampleUser();
  EXPECT_TRUE(user.HasRole(Role::kViewer));
  EXPECT_FALSE(user.HasRole(Role::kAdmin));
  EXPECT_TRUE(user.HasService("payments"));
  EXPECT_FALSE(user.HasService("search"));
}

TEST(AssessmentTest, BlockingImplication) {
  Assessment assessment = SampleAssessment();
  EXPECT_TRUE(assessment.HasBlockingImplication());
  assessment.data_implications[0].blocking = false;
  EXPECT_FALSE(assessment.HasBlockingImplication());
}

}  // namespace
}  // namespace backout::core
