#include "checks/manual_check.h"

#include <gtest/gtest.h>

#include <mutex>

#include "checks/test_support.h"

namespace backout::checks {
namespace {

using nlohmann::json;

class MemoryConfirmations final : public ConfirmationSource {
 public:
  void Add(ManualConfirmation confirmation) {
    std::lock_guard lock(mutex_);
    confirmations_.push_back(std::move(confirmation));
  }
  core::Result<std::vector<ManualConfirmation>> List(std::string_view incident_id,
                                                     std::string_view check) const override {
    std::lock_guard lock(mutex_);
    return confirmations_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<ManualConfirmation> confirmations_;
};

class ManualCheckTest : public ::testing::Test {
 protected:
  CheckResult Run(const json& settings) {
    auto check = ManualCheck::Create("user-test", settings);
    EXPECT_TRUE(check) << (check ? "" : check.error().message);
    if (!check) return {};
    CheckContext context = testing::ManualContext(clock_, nullptr);
    context.rollback_finished_at = rollback_at_;
    context.confirmations = &confirmations_;
    return (*check)->Run(context);
  }

  core::ManualClock clock_{core::Time(std::chrono::seconds(1'800'000'000))};
  core::Time rollback_at_ = clock_.Now() - std::chrono::minutes(1);
  MemoryConfirmations confirmations_;
};

TEST_F(ManualCheckTest, ConfirmationAfterRollbackPasses) {
  confirmations_.Add({.confirmed_by = "erin",
                      .confirmed_at = rollback_at_ + std::chrono::seconds(30),
                      .passed = true,
                      .note = "checkout works",
                      .attachment_name = "screen.png",
                      .attachment_sha256 = "ab12"});

  CheckResult result = Run({{"wait", "0s"}});

  EXPECT_EQ(result.observation.result, core::ObservationResult::kPassed)
      << result.observation.detail;
  EXPECT_EQ(result.observation.observed_at, rollback_at_ + std::chrono::seconds(30));
  EXPECT_NE(result.observation.detail.find("confirmed by erin"), std::string::npos);
  EXPECT_NE(result.observation.detail.find("screen.png"), std::string::npos);
}

TEST_F(ManualCheckTest, ConfirmationBeforeRollbackDoesNotCount) {
  confirmations_.Add({.confirmed_by = "erin",
                      .confirmed_at = rollback_at_ - std::chrono::seconds(5),
                      .passed = true});

  CheckResult result = Run({{"wait", "0s"}});

  EXPECT_EQ(result.observation.result, core::ObservationResult::kUnknown);
  EXPECT_NE(result.observation.detail.find("1 older confirmation(s) do not count"),
            std::string::npos)
      << result.observation.detail;
}

TEST_F(ManualCheckTest, RejectionFails) {
  confirmations_.Add({.confirmed_by = "erin",
                      .confirmed_at = rollback_at_ + std::chrono::seconds(1),
                      .passed = true});
  confirmations_.Add({.confirmed_by = "erin",
                      .confirmed_at = rollback_at_ + std::chrono::seconds(2),
                      .passed = false,
                      .note = "cart still empty"});

  CheckResult result = Run({{"wait", "0s"}});

  EXPECT_EQ(result.observation.result, core::ObservationResult::kFailed);
  EXPECT_NE(result.observation.detail.find("cart still empty"), std::string::npos);
}

TEST_F(ManualCheckTest, OnlyListedConfirmersCount) {
  confirmations_.Add({.confirmed_by = "mallory",
                      .confirmed_at = rollback_at_ + std::chrono::seconds(1),
                      .passed = true});

  CheckResult result = Run({{"wait", "0s"}, {"confirmers", {"erin"}}});

  EXPECT_EQ(result.observation.result, core::ObservationResult::kUnknown);
}

TEST_F(ManualCheckTest, WaitsForLateConfirmation) {
  auto check = ManualCheck::Create("user-test", {{"wait", "10m"}, {"interval", "30s"}});
  ASSERT_TRUE(check);
  CheckContext context = testing::ManualContext(clock_, nullptr);
  context.rollback_finished_at = rollback_at_;
  context.confirmations = &confirmations_;
  int sleeps = 0;
  context.sleep = [&](std::chrono::milliseconds delay) {
    clock_.Advance(std::chrono::duration_cast<core::Duration>(delay));
    if (++sleeps == 3) confirmations_.Add({.confirmed_by = "erin", .confirmed_at = clock_.Now()});
  };

  CheckResult result = (*check)->Run(context);

  EXPECT_EQ(result.observation.result, core::ObservationResult::kPassed);
  EXPECT_EQ(sleeps, 3);
}

TEST_F(ManualCheckTest, NoConfirmationIsUnknownAfterWait) {
  CheckResult result = Run({{"wait", "2m"}, {"interval", "30s"}});

  EXPECT_EQ(result.observation.result, core::ObservationResult::kUnknown);
  EXPECT_NE(result.observation.detail.find("backout incident confirm-check INC-1 user-test"),
            std::string::npos)
      << result.observation.detail;
}

}  // namespace
}  // namespace backout::checks
