# backout_order_startup_functions(TARGET ORDER_FILE)
#
# Links TARGET with unused sections removed and, when LLVM's lld linker is installed, with the
# functions named in ORDER_FILE (one mangled symbol a line) placed first, in that order. The
# kernel maps a program's code in blocks of up to 64 KiB around each page it runs, so code that
# runs at start-up but lies scattered over the binary keeps most of it resident.
# scripts/startup-order.sh writes ORDER_FILE from a callgrind run of `backout serve`.
function(backout_order_startup_functions target order_file)
  target_link_options(${target} PRIVATE -Wl,--gc-sections)
  find_program(BACKOUT_LLD ld.lld)
  if(BACKOUT_LLD AND EXISTS ${order_file})
    target_link_options(${target} PRIVATE -fuse-ld=lld -Wl,--symbol-ordering-file=${order_file}
                        -Wl,--no-warn-symbol-ordering)
    set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${order_file})
  endif()
endfunction()
