# Module table: which project modules each module may link. The build refuses any other edge, so
# the layering of the design stays true in the code. External libraries are listed per module too.
set(BACKOUT_MODULES core ledger store http providers signals checks evidence app server cli)

set(BACKOUT_ALLOWED_core "")
set(BACKOUT_ALLOWED_ledger core)
set(BACKOUT_ALLOWED_store core ledger)
set(BACKOUT_ALLOWED_http "")
set(BACKOUT_ALLOWED_providers core http)
set(BACKOUT_ALLOWED_signals core http)
set(BACKOUT_ALLOWED_checks core http providers)
set(BACKOUT_ALLOWED_evidence core ledger store)
set(BACKOUT_ALLOWED_app core ledger store http providers signals checks evidence)
set(BACKOUT_ALLOWED_server app core ledger store http providers signals checks evidence)
set(BACKOUT_ALLOWED_cli http ledger store evidence core)

# External libraries each module may link. `core` gets std, fmt and nlohmann-json only.
set(BACKOUT_EXTERNAL_core fmt::fmt nlohmann_json::nlohmann_json)
set(BACKOUT_EXTERNAL_ledger OpenSSL::Crypto)
set(BACKOUT_EXTERNAL_store SQLite::SQLite3 PostgreSQL::PostgreSQL spdlog::spdlog Threads::Threads)
set(BACKOUT_EXTERNAL_http CURL::libcurl OpenSSL::Crypto spdlog::spdlog fmt::fmt
    nlohmann_json::nlohmann_json)
set(BACKOUT_EXTERNAL_providers spdlog::spdlog Threads::Threads OpenSSL::Crypto PkgConfig::LIBGIT2
    yaml-cpp)
set(BACKOUT_EXTERNAL_signals spdlog::spdlog)
set(BACKOUT_EXTERNAL_checks spdlog::spdlog)
set(BACKOUT_EXTERNAL_evidence LibArchive::LibArchive spdlog::spdlog PkgConfig::RSVG)
set(BACKOUT_EXTERNAL_app yaml-cpp spdlog::spdlog OpenSSL::Crypto Threads::Threads)
set(BACKOUT_EXTERNAL_server PkgConfig::HTTPLIB OpenSSL::SSL spdlog::spdlog Threads::Threads
    CLI11::CLI11)
set(BACKOUT_EXTERNAL_cli CLI11::CLI11 spdlog::spdlog yaml-cpp)

# One precompiled header serves every module library and one every module test. A header per
# target cost about 130 MB of disk and a compile of its own for each of the 22 targets, and a CI
# build once ran out of disk. A target reusing a header needs the same compile options, so these
# two are built with the project's flags and the libraries that define macros the headers read.
add_library(backout_pch OBJECT ${PROJECT_SOURCE_DIR}/cmake/pch_anchor.cc)
target_link_libraries(backout_pch PRIVATE fmt::fmt nlohmann_json::nlohmann_json)
target_precompile_headers(backout_pch PRIVATE <nlohmann/json.hpp> <fmt/format.h> <string> <vector>
                          <expected>)
add_library(backout_test_pch OBJECT ${PROJECT_SOURCE_DIR}/cmake/pch_anchor.cc)
target_link_libraries(backout_test_pch PRIVATE GTest::gtest nlohmann_json::nlohmann_json)
target_precompile_headers(backout_test_pch PRIVATE <gtest/gtest.h> <nlohmann/json.hpp>)

# backout_module(NAME SOURCES files... DEPS modules... [LIBS extra external targets])
# Builds library backout_NAME. Fails configuration when DEPS names a module the table forbids.
function(backout_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LIBS" ${ARGN})
  foreach(dep IN LISTS ARG_DEPS)
    if(NOT dep IN_LIST BACKOUT_ALLOWED_${name})
      message(FATAL_ERROR "module '${name}' may not depend on '${dep}': the module table in "
                          "cmake/BackoutModule.cmake allows only [${BACKOUT_ALLOWED_${name}}]")
    endif()
  endforeach()
  foreach(lib IN LISTS ARG_LIBS)
    if(NOT lib IN_LIST BACKOUT_EXTERNAL_${name})
      message(FATAL_ERROR "module '${name}' may not link '${lib}': add it to BACKOUT_EXTERNAL_${name} "
                          "in cmake/BackoutModule.cmake if the design allows it")
    endif()
  endforeach()
  add_library(backout_${name} STATIC ${ARG_SOURCES})
  target_include_directories(backout_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  set(dep_targets "")
  foreach(dep IN LISTS ARG_DEPS)
    list(APPEND dep_targets backout_${dep})
  endforeach()
  target_link_libraries(backout_${name} PUBLIC ${dep_targets} ${ARG_LIBS})
  target_precompile_headers(backout_${name} REUSE_FROM backout_pch)
endfunction()

# backout_module_test(NAME SOURCES files... [LIBS targets] [POSTGRESQL_FILTER pattern]) builds
# NAME_test, linked with the module under test, and registers its cases with CTest when the tests
# run, labelled NAME. Cases matching the gtest filter POSTGRESQL_FILTER (such as "*Postgres*") are
# labelled `postgresql` instead and share the PostgreSQL cluster of the `postgres_cluster`
# fixture (tests/support/CMakeLists.txt).
function(backout_module_test name)
  cmake_parse_arguments(ARG "" "POSTGRESQL_FILTER" "SOURCES;LIBS" ${ARGN})
  add_executable(${name}_test ${ARG_SOURCES})
  target_link_libraries(${name}_test PRIVATE backout_${name} backout_test_support ${ARG_LIBS} GTest::gtest
                        GTest::gmock GTest::gtest_main)
  target_precompile_headers(${name}_test REUSE_FROM backout_test_pch)
  # Parameterized cases are named Suite.Case/param, without the printed parameter value.
  set(discover_options DISCOVERY_MODE PRE_TEST NO_PRETTY_VALUES)
  # PROPERTIES values pass through several CMake lists, so each must be a single value.
  set(environment "BACKOUT_TEST_TMPDIR=${CMAKE_BINARY_DIR}/tmp")
  if(ARG_POSTGRESQL_FILTER)
    add_dependencies(${name}_test backout_test_postgres)
    gtest_discover_tests(${name}_test ${discover_options} TEST_FILTER "-${ARG_POSTGRESQL_FILTER}"
                         PROPERTIES LABELS ${name} ENVIRONMENT "${environment}")
    gtest_discover_tests(${name}_test ${discover_options} TEST_FILTER "${ARG_POSTGRESQL_FILTER}"
                         PROPERTIES LABELS postgresql FIXTURES_REQUIRED postgres_cluster
                                    ENVIRONMENT "${environment}")
  else()
    gtest_discover_tests(${name}_test ${discover_options}
                         PROPERTIES LABELS ${name} ENVIRONMENT "${environment}")
  endif()
endfunction()
