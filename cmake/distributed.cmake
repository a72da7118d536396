# PatchGCL::distributed: <patchgcl/distributed.hpp> (c10d) on top of PatchGCL::patchgcl.
# LibTorch's libtorch_cpu exports c10d's TCPStore and ProcessGroupGloo; their headers need
# Gloo's own headers (Debian: libgloo-dev) and USE_C10D_GLOO. Without Gloo's headers the target
# still exists (TCPStore, the KeyAllGather seam) but declares no Gloo group.
find_path(PATCHGCL_GLOO_INCLUDE_DIR gloo/config.h)
add_library(patchgcl_distributed INTERFACE)
add_library(PatchGCL::distributed ALIAS patchgcl_distributed)
set_target_properties(patchgcl_distributed PROPERTIES EXPORT_NAME distributed)
target_link_libraries(patchgcl_distributed INTERFACE patchgcl)
if(PATCHGCL_GLOO_INCLUDE_DIR)
  set(PATCHGCL_HAVE_GLOO ON)
  target_compile_definitions(patchgcl_distributed INTERFACE USE_C10D_GLOO)
  message(STATUS "patchgcl: Gloo headers in ${PATCHGCL_GLOO_INCLUDE_DIR}: PatchGCL::distributed has ProcessGroupGloo")
else()
  set(PATCHGCL_HAVE_GLOO OFF)
  message(STATUS "patchgcl: no Gloo headers (Debian: libgloo-dev): distributed tests and training are off")
endif()
if(PATCHGCL_INSTALL)
  install(TARGETS patchgcl_distributed EXPORT PatchGCLTargets)
endif()
if(PATCHGCL_BUILD_TESTS AND PATCHGCL_HAVE_GLOO)
  add_subdirectory(${CMAKE_CURRENT_LIST_DIR}/../tests/distributed ${CMAKE_CURRENT_BINARY_DIR}/tests/distributed)
endif()
