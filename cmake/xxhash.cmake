# patchgcl_xxhash: Debian's libxxhash-dev (XXH3-64, the checksums of the example trainer's
# checkpoints: examples/trainer/train/checkpoint_file.hpp), found by pkg-config (libxxhash) or by
# its header and library. Included by examples/trainer and fuzz/; scripts/lib/install-deps.sh
# installs it. The library itself does not need it.
if(NOT TARGET patchgcl_xxhash)
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(PATCHGCL_XXHASH QUIET IMPORTED_TARGET libxxhash)
  endif()
  add_library(patchgcl_xxhash INTERFACE)
  if(TARGET PkgConfig::PATCHGCL_XXHASH)
    target_link_libraries(patchgcl_xxhash INTERFACE PkgConfig::PATCHGCL_XXHASH)
  else()
    find_path(PATCHGCL_XXHASH_INCLUDE_DIR xxhash.h)
    find_library(PATCHGCL_XXHASH_LIBRARY xxhash)
    if(NOT PATCHGCL_XXHASH_INCLUDE_DIR OR NOT PATCHGCL_XXHASH_LIBRARY)
      message(FATAL_ERROR "patchgcl: the example trainer checksums its checkpoints with xxHash (XXH3-64): "
                          "apt-get install libxxhash-dev (scripts/lib/install-deps.sh does), "
                          "or configure with -DPATCHGCL_BUILD_TRAINER=OFF")
    endif()
    target_include_directories(patchgcl_xxhash INTERFACE ${PATCHGCL_XXHASH_INCLUDE_DIR})
    target_link_libraries(patchgcl_xxhash INTERFACE ${PATCHGCL_XXHASH_LIBRARY})
  endif()
endif()
