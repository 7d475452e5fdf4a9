include_guard(GLOBAL)

# backout_library_soname(TARGET OUTPUT) sets OUTPUT to the SONAME of the shared library behind the
# imported TARGET (such as CURL::libcurl), for code that opens that library with dlopen instead of
# linking it. The SONAME is the file name the dynamic loader looks up, such as libcurl.so.4; it is
# read from the library's dynamic section with objdump, so it always matches the headers found.
function(backout_library_soname target output)
  get_target_property(path ${target} LOCATION)
  if(NOT path)
    message(FATAL_ERROR "cannot find the library file of ${target}, so its SONAME is unknown")
  endif()
  if(NOT CMAKE_OBJDUMP)
    message(FATAL_ERROR "objdump is missing, so the SONAME of ${path} is unknown; install "
                        "Debian's binutils package")
  endif()
  execute_process(COMMAND ${CMAKE_OBJDUMP} -p ${path} OUTPUT_VARIABLE dump ERROR_VARIABLE errors
                  RESULT_VARIABLE status)
  string(REGEX MATCH "SONAME +([^ \n]+)" match "${dump}")
  if(NOT status EQUAL 0 OR NOT CMAKE_MATCH_1)
    message(FATAL_ERROR "${CMAKE_OBJDUMP} -p ${path} gave no SONAME (exit status ${status}): "
                        "${errors}")
  endif()
  message(STATUS "SONAME of ${target}: ${CMAKE_MATCH_1}")
  set(${output} ${CMAKE_MATCH_1} PARENT_SCOPE)
endfunction()
