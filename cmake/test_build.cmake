# How the test executables are compiled. A translation unit that parses <torch/torch.h> costs
# ~20 s on a 2-core machine, and one that instantiates the example trainer ~60 s, so:
#  - one precompiled <torch/torch.h> + <catch2/catch.hpp>, built once (patchgcl_test_pch, with
#    LibTorch's flags and no definitions of ours: GCC uses a precompiled header only where every
#    macro defined when it was built is defined alike) and reused by every test executable;
#  - a unity build: the test files of an executable are compiled as one translation unit (the
#    executables build beside each other on the 2-core machine), so the headers' inline code (the
#    whole trainer, for its tests) is compiled once instead of once per file;
#  - Catch2's runner compiled once (patchgcl_catch_runner: tests/support/catch_runner.cpp).
# -DPATCHGCL_UNITY_BUILD=OFF compiles one file at a time (quicker to rebuild after editing one test).
option(PATCHGCL_UNITY_BUILD "Compile each test executable's files as one unity translation unit" ON)

# Imported targets are local to the directory that found them: found again in every includer's.
find_package(Catch2 2 REQUIRED)
if(NOT TARGET patchgcl_catch_runner)
  add_library(patchgcl_catch_runner STATIC ${PROJECT_SOURCE_DIR}/tests/support/catch_runner.cpp)
  target_link_libraries(patchgcl_catch_runner PUBLIC Catch2::Catch2)
  add_library(patchgcl_test_pch OBJECT ${PROJECT_SOURCE_DIR}/tests/support/pch.cpp)
  target_link_libraries(patchgcl_test_pch PRIVATE PatchGCL::patchgcl Catch2::Catch2)
  target_precompile_headers(patchgcl_test_pch PRIVATE <torch/torch.h> <catch2/catch.hpp>)
  if(PATCHGCL_SANITIZE)
    target_compile_options(patchgcl_catch_runner PRIVATE ${PATCHGCL_SANITIZE_FLAGS})
    target_compile_options(patchgcl_test_pch PRIVATE ${PATCHGCL_SANITIZE_FLAGS})
  endif()
endif()

# patchgcl_test_build(TARGET [SEPARATE file...])
#   SEPARATE: sources compiled on their own, without the precompiled header (they define macros
#   before including a header, or carry the checkout's paths).
function(patchgcl_test_build target)
  cmake_parse_arguments(ARG "" "" "SEPARATE" ${ARGN})
  target_link_libraries(${target} PRIVATE patchgcl_catch_runner)
  target_precompile_headers(${target} REUSE_FROM patchgcl_test_pch)
  if(ARG_SEPARATE)
    set_source_files_properties(${ARG_SEPARATE} PROPERTIES
      SKIP_PRECOMPILE_HEADERS ON SKIP_UNITY_BUILD_INCLUSION ON)
  endif()
  if(PATCHGCL_UNITY_BUILD)
    # Batch size 0: every other source in one unity translation unit.
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_MODE BATCH UNITY_BUILD_BATCH_SIZE 0)
  endif()
endfunction()
