#pragma once

#include <mutex>

#include "core/time.h"

namespace backout::core {

// The only source of the current time. `core` never reads the wall clock itself; the composition
// root passes a system clock, unit tests a ManualClock. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Time Now() const = 0;
};

// A clock that moves only when told to, for deterministic tests.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Time start) : now_(start) {}

  Time Now() const override {
    std::lock_guard lock(mutex_);
    return now_;
  }

  void Advance(Duration step) {
    std::lock_guard lock(mutex_);
    now_ += step;
  }

  void Set(Time time) {
    std::lock_guard lock(mutex_);
    now_ = time;
  }

 private:
  mutable std::mutex mutex_;
  Time now_;
};

}  // namespace backout::core
