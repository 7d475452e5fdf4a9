#pragma once

#include <string>

#include "core/domain.h"

namespace backout::app {

// The authenticated user on whose behalf a use case runs, as its bearer token resolved it.
struct Caller {
  core::User user;
  std::string token_id;  // "tok-N"; empty for the server's own workers

  const std::string& name() const { return user.name; }
};

// The caller the server's own workers act as: role system, never granted to a user.
Caller SystemCaller();

}  // namespace backout::app
