#include "server/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace backout::server {

RateLimiter::Bucket& RateLimiter::Refill(const std::string& address) {
  const core::Time now = clock_.Now();
  auto [it, inserted] = buckets_.try_emplace(address, Bucket{double(options_.burst), now});
  Bucket& bucket = it->second;
  if (!inserted && now > bucket.updated) {
    const double earned = double((now - bucket.updated).count()) / options_.refill_every.count();
    bucket.tokens = std::min<double>(options_.burst, bucket.tokens + earned);
    bucket.updated = now;
  }
  return bucket;
}

core::Duration RateLimiter::BlockedFor(const std::string& address) {
  std::lock_guard lock(mutex_);
  Bucket& bucket = Refill(address);
  if (bucket.tokens >= 1) return core::Duration::zero();
  const double missing = 1 - bucket.tokens;
  return core::Duration(int64_t(std::ceil(missing * options_.refill_every.count())));
}

void RateLimiter::RecordFailure(const std::string& address) {
  std::lock_guard lock(mutex_);
  Bucket& bucket = Refill(address);
  bucket.tokens = std::max(0.0, bucket.tokens - 1);

  // Forget addresses whose buckets are full again, so a scan of many addresses cannot grow the
  // map without bound.
  if (buckets_.size() > 10000) {
    const core::Time now = clock_.Now();
    std::erase_if(buckets_, [&](const auto& entry) {
      const double earned =
          double((now - entry.second.updated).count()) / options_.refill_every.count();
      return entry.second.tokens + earned >= options_.burst;
    });
  }
}

}  // namespace backout::server
