# PatchGCL::safetensors: <patchgcl/io/safetensors.hpp> (safetensors files, and reading either a
# safetensors or a .pgt file) on top of PatchGCL::patchgcl, with nlohmann-json for the header
# (Debian: nlohmann-json3-dev). Optional for a project that uses patchgcl: without nlohmann-json
# the target does not exist and the core stays LibTorch-only. This build's tests and trainer need it.
find_package(nlohmann_json 3.2 CONFIG QUIET)
if(nlohmann_json_FOUND)
  add_library(patchgcl_safetensors INTERFACE)
  add_library(PatchGCL::safetensors ALIAS patchgcl_safetensors)
  set_target_properties(patchgcl_safetensors PROPERTIES EXPORT_NAME safetensors)
  target_link_libraries(patchgcl_safetensors INTERFACE patchgcl nlohmann_json::nlohmann_json)
  # Imported targets are local to the directory that found them: a project that vendors patchgcl
  # with add_subdirectory must see this one too when it links PatchGCL::safetensors.
  if(NOT PATCHGCL_MASTER_PROJECT)
    get_target_property(_pgcl_json_global nlohmann_json::nlohmann_json IMPORTED_GLOBAL)
    if(NOT _pgcl_json_global)
      set_target_properties(nlohmann_json::nlohmann_json PROPERTIES IMPORTED_GLOBAL TRUE)
    endif()
  endif()
  if(PATCHGCL_INSTALL)
    install(TARGETS patchgcl_safetensors EXPORT PatchGCLTargets)
  endif()
  message(STATUS "patchgcl: nlohmann-json ${nlohmann_json_VERSION}: PatchGCL::safetensors")
elseif(PATCHGCL_BUILD_TESTS OR PATCHGCL_BUILD_EXAMPLES)
  message(FATAL_ERROR "patchgcl: the tests and the trainer need nlohmann-json for PatchGCL::safetensors "
                      "(Debian: apt-get install nlohmann-json3-dev; scripts/lib/install-deps.sh installs it)")
else()
  message(STATUS "patchgcl: no nlohmann-json (Debian: nlohmann-json3-dev): no PatchGCL::safetensors")
endif()
