#pragma once

#include <string_view>

#include "core/error.h"
#include "store/store.h"

namespace backout::app {

// Transactions WriteForJob runs for one call at most: the first and the retries after conflicts.
inline constexpr int kJobWriteAttempts = 10;

// Runs `body` in one write transaction on behalf of the job that owns `lease`. The transaction
// first checks the lease's fencing token, so a worker that lost its lease commits nothing. That
// kConflict is returned at once, without calling `body`.
//
// Any other kConflict (an object changed since the transaction read it, a PostgreSQL
// serialization failure or deadlock) and kAlreadyExists (a concurrent writer inserted the same
// id first) are expected outcomes of concurrent jobs. So `body` runs again at once in a new
// transaction, up to kJobWriteAttempts transactions in all. There is no backoff, because on
// PostgreSQL the losing statement waits for the winner's commit, so the next attempt reads the
// winner's result. Each retry is logged at debug level with `description` and the job id, and
// the last error is returned when all attempts fail. Reading with Transaction::GetForUpdate what
// `body` replaces avoids most of these retries.
//
// `body` must therefore read inside the transaction what it changes, and reset at its start
// whatever it assigns outside the transaction.
core::Result<void> WriteForJob(store::Store& store, const store::JobLease& lease,
                               std::string_view description, const store::TransactionBody& body);

}  // namespace backout::app
