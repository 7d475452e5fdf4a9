#pragma once

#include <chrono>

#include "core/clock.h"

namespace backout::store {

// The wall clock, truncated to the microseconds the ledger records. Thread-safe.
class SystemClock final : public core::Clock {
 public:
  core::Time Now() const override {
    return std::chrono::time_point_cast<core::Duration>(std::chrono::system_clock::now());
  }
};

}  // namespace backout::store
