#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "checks/check.h"

namespace backout::checks {

// Settings of a `manual` check: a named person runs a user-level test and confirms it.
struct ManualCheckSettings {
  std::string instructions;  // what the person should test
  std::vector<std::string>
      confirmers;  // user names allowed to confirm; empty allows any lead or engineer
  std::chrono::milliseconds wait{1'800'000};  // how long validation waits for a confirmation
  std::chrono::milliseconds interval{5'000};  // between looks at the confirmations

  static core::Result<ManualCheckSettings> Parse(const nlohmann::json& settings);
  // Returns whether `user` may confirm this check.
  bool AllowsConfirmer(std::string_view user) const;
};

// Waits up to `wait` for a confirmation recorded after the rollback completed, from an allowed
// confirmer. The latest such confirmation decides: passed or failed. Confirmations from before the
// rollback completed do not count. Without one the check is unknown.
class ManualCheck final : public Check {
 public:
  static core::Result<std::unique_ptr<ManualCheck>> Create(std::string name,
                                                           const nlohmann::json& settings);

  CheckResult Run(const CheckContext& context) const override;

 private:
  ManualCheck(std::string name, ManualCheckSettings settings)
      : Check(std::move(name)), settings_(std::move(settings)) {}

  ManualCheckSettings settings_;
};

}  // namespace backout::checks
