# The fuzz targets and the layers each links: "<name>:<lib>[:<lib>...]". A target is built only
# when its source (tests/fuzz/fuzz_<name>.c) and its libraries exist, so the list can run ahead
# of the modules being written.
set(P2P_FUZZ_TARGETS
  "util:p2p_common"
  "config:p2p_cfg:p2p_common"
  "seed:p2p_seed:p2p_common"
  "tus:p2p_tus:p2p_seed:p2p_common"
  "http:p2p_http:p2p_common"
  "tracker:p2p_tracker"
  "tus_http:p2p_tus:p2p_seed:p2p_http:p2p_common")

# Targets that drive a p2p_httpd server through fuzz_net.c (the shared client side).
set(P2P_FUZZ_NET_TARGETS http tus_http)

# p2p_fuzz_each(<callback>): calls <callback>(name libs...) for every buildable target.
# p2p_fuzz_sources(<name> <var>): the extra sources target <name> needs.
function(p2p_fuzz_sources name var)
  set(srcs)
  if(name IN_LIST P2P_FUZZ_NET_TARGETS)
    list(APPEND srcs ${P2P_FUZZ_DIR}/fuzz_net.c)
  endif()
  set(${var} ${srcs} PARENT_SCOPE)
endfunction()

macro(p2p_fuzz_each callback)
  foreach(_spec ${P2P_FUZZ_TARGETS})
    string(REPLACE ":" ";" _parts "${_spec}")
    list(POP_FRONT _parts _name)
    set(_ok TRUE)
    if(NOT EXISTS ${P2P_FUZZ_DIR}/fuzz_${_name}.c)
      set(_ok FALSE)
    endif()
    foreach(_lib ${_parts})
      if(NOT TARGET ${_lib})
        set(_ok FALSE)
      endif()
    endforeach()
    if(_ok)
      cmake_language(CALL ${callback} ${_name} ${_parts})
    endif()
  endforeach()
endmacro()
