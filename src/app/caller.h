#pragma once

#include <string>
#include <vector>

namespace backout::app {

// The authenticated user on whose behalf a use case runs, as its token resolved it.
struct Caller {
  std::string name;
  std::vector<std::string> roles;     // role names such as "engineering-lead"
  std::vector<std::string> services;  // services the grant covers; empty means none are named
  std::string token_id;               // "tok-N", the token that authenticated this request
};

}  // namespace backout::app
