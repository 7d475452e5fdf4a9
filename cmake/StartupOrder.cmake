# backout_order_startup_functions(TARGET ORDER_FILE)
#
# Links TARGET with unused sections removed and, when LLVM's lld linker is installed, with the
# functions named in ORDER_FILE (one mangled symbol a line) placed first, in that order. The
# kernel maps a program's code in blocks around each page that runs (64 KiB or more on the
# machine of docs/benchmarks.md), so start-up code scattered over the binary keeps most of it
# resident. scripts/startup-order.py writes ORDER_FILE from a callgrind run of `backout serve`.
function(backout_order_startup_functions target order_file)
  target_link_options(${target} PRIVATE -Wl,--gc-sections)
  find_program(BACKOUT_LLD ld.lld)
  if(NOT BACKOUT_LLD)
    message(STATUS "ld.lld not found: ${target} is linked without its start-up order, so an idle "
                   "server keeps about 2 MiB more of its code resident (install Debian's lld)")
  elseif(NOT EXISTS ${order_file})
    message(STATUS "${order_file} is missing: ${target} is linked without its start-up order "
                   "(scripts/startup-order.py writes it)")
  else()
    target_link_options(${target} PRIVATE -fuse-ld=lld -Wl,--symbol-ordering-file=${order_file}
                        -Wl,--no-warn-symbol-ordering)
    set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${order_file})
  endif()
endfunction()
