#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "providers/provider.h"

namespace backout::providers {

// Creates providers by kind name from a service's provider binding, so that the app layer and the
// configuration never name a concrete provider. Each provider folder contributes one factory to
// the table in registry.cc. All functions are thread-safe.
class Registry {
 public:
  // Creates the provider of `kind` for `service`. `settings` is the binding's settings object
  // (a `kind` member in it is accepted), `secrets` the resolved values of the secrets it refers
  // to, and `clock` must outlive the provider. Fails with kInvalidArgument on an unknown kind or
  // invalid settings, naming the service and the field.
  static core::Result<std::unique_ptr<Provider>> Create(std::string_view kind,
                                                        std::string_view service,
                                                        const nlohmann::json& settings,
                                                        const SecretValues& secrets,
                                                        core::Clock& clock);

  // Returns the registered kinds, sorted.
  static std::vector<std::string_view> Kinds();
};

}  // namespace backout::providers
