# Crash-regression tests of the fuzz targets (tests/fuzz, docs/FUZZING.md): each target's
# LLVMFuzzerTestOneInput built with the normal compiler (no libFuzzer) and a small driver, run
# over its seed corpus (tests/fuzz/corpus/<name>) and every saved crash input
# (tests/fuzz/regress/<name>).
set(P2P_FUZZ_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
include(${P2P_FUZZ_DIR}/targets.cmake)

function(p2p_fuzz_regress name)
  p2p_fuzz_sources(${name} extra)
  add_executable(fuzz_regress_${name} fuzz/fuzz_${name}.c fuzz/driver.c ${extra})
  target_include_directories(fuzz_regress_${name} PRIVATE ${P2P_FUZZ_DIR})
  target_compile_options(fuzz_regress_${name} PRIVATE ${P2P_WARNINGS})
  target_link_libraries(fuzz_regress_${name} PRIVATE ${ARGN})
  add_test(NAME fuzz_regress_${name}
           COMMAND fuzz_regress_${name} ${P2P_FUZZ_DIR}/corpus/${name}
                   ${P2P_FUZZ_DIR}/regress/${name}
           WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
  set_tests_properties(fuzz_regress_${name} PROPERTIES TIMEOUT 120 LABELS "unit;fuzz"
                       ENVIRONMENT "${P2P_TEST_ENV}")
endfunction()

# In a -DP2P_FUZZ=ON build the layers are instrumented for libFuzzer; the regression runs belong
# to the normal and sanitizer builds.
if(NOT P2P_FUZZ)
  p2p_fuzz_each(p2p_fuzz_regress)
endif()
