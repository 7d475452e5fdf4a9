#pragma once

#include <string>

#include <gtest/gtest.h>

#include "deployment.h"

// Asserts that a CLI run exited with `expected`, printing its output when it did not.
#define ASSERT_CLI_EXIT(result, expected)                                    \
  ASSERT_EQ((result).exit_code, (expected)) << "stdout:\n"                   \
                                            << (result).out << "\nstderr:\n" \
                                            << (result).err
#define ASSERT_CLI_OK(result) ASSERT_CLI_EXIT(result, 0)

namespace backout::integration {

// Grants lead-1, sre-1 and sre-2 through `backout user create` as the bootstrap admin.
void GrantTeam(Deployment& deployment);

// Records checkout v1 (verified good) and v2, and opens a sev2 incident on checkout that
// suspects v2; returns the incident id through `incident_id`.
void OpenIncidentOnV2(Deployment& deployment, std::string& incident_id);

// Assesses the incident as `lead` and decides go; checks that the plan targets v1.
void AssessAndApprove(Deployment& deployment, const std::string& incident_id,
                      const std::string& lead = "lead-1");

// The whole life of one incident with a lead (lead-1) and two engineers (sre-1, sre-2): record
// changes, open, assess, decide, roll back with --wait, validate with --wait, document, review,
// action item added and done, close; then, with the server stopped, `backout ledger verify`.
void RunWholeLifecycle(Deployment& deployment);

}  // namespace backout::integration
