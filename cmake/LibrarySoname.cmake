# Run-time names of the shared libraries that modules open with dlopen (core::SharedLibrary)
# instead of linking them.
include_guard(GLOBAL)

# backout_library_soname(PREFIX LIBRARY FALLBACK_PACKAGE) reads the library file LIBRARY (a path,
# symbolic links allowed, such as the libfoo.so that find_package or find_library found) and sets
# PREFIX_SONAME to its SONAME, the file name dlopen looks up at run time, and PREFIX_PACKAGE to
# the Debian package that installs it. The package comes from dpkg-query when the file belongs to
# one, and is FALLBACK_PACKAGE otherwise. Configuration fails when the file has no SONAME.
function(backout_library_soname prefix library fallback_package)
  file(REAL_PATH "${library}" real_path)
  execute_process(COMMAND ${CMAKE_OBJDUMP} -p "${real_path}" OUTPUT_VARIABLE dump
                  ERROR_VARIABLE error RESULT_VARIABLE status)
  string(REGEX MATCH "\n *SONAME +([^\n ]+)" match "${dump}")
  if(NOT status EQUAL 0 OR NOT CMAKE_MATCH_1)
    message(FATAL_ERROR "cannot read the SONAME of ${real_path} with '${CMAKE_OBJDUMP} -p' "
                        "(${error}); point CMake at the shared library (.so) of the package")
  endif()
  set(soname "${CMAKE_MATCH_1}")

  set(package "${fallback_package}")
  find_program(BACKOUT_DPKG_QUERY dpkg-query)
  if(BACKOUT_DPKG_QUERY)
    execute_process(COMMAND ${BACKOUT_DPKG_QUERY} -S "${real_path}" OUTPUT_VARIABLE owner
                    ERROR_QUIET RESULT_VARIABLE status)
    # dpkg-query prints "package:arch: path"; the architecture is not part of the name to install.
    if(status EQUAL 0 AND owner MATCHES "^([^:,\n ]+)")
      set(package "${CMAKE_MATCH_1}")
    endif()
  endif()
  message(STATUS "${prefix}: ${soname} from package ${package}")
  set(${prefix}_SONAME "${soname}" PARENT_SCOPE)
  set(${prefix}_PACKAGE "${package}" PARENT_SCOPE)
endfunction()
