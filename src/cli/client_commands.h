#pragma once

#include <CLI/CLI.hpp>

namespace backout::cli {

// Client commands, one function per noun. Each adds `backout <noun> <verb>…` to `app`; every verb
// calls the server's API and stores its exit status in `exit_status`.

// `user create|list` and `token revoke`.
void AddUserCommands(CLI::App& app, int& exit_status);

// `change record|verify|list`.
void AddChangeCommands(CLI::App& app, int& exit_status);

// `service list|show|unfreeze`.
void AddServiceCommands(CLI::App& app, int& exit_status);

// `incident open|list|show|assess|decide|rollback|confirm|validate|document|close`.
void AddIncidentCommands(CLI::App& app, int& exit_status);

// `review write|show|status`.
void AddReviewCommands(CLI::App& app, int& exit_status);

// `action add|list|overdue|done`.
void AddActionCommands(CLI::App& app, int& exit_status);

// `discovered list|show|link|document`, `service reconcile|timeline` and `notification list`.
// Runs after AddServiceCommands, whose `service` command it extends.
void AddReconciliationCommands(CLI::App& app, int& exit_status);

// `incident confirm-check`; call after AddIncidentCommands.
void AddCheckCommands(CLI::App& app, int& exit_status);

// `access review [--attest]`.
void AddAccessCommands(CLI::App& app, int& exit_status);

}  // namespace backout::cli
