# patchgcl_image_codecs: the example trainer's image libraries, Debian's libturbojpeg0-dev
# (libjpeg-turbo's TurboJPEG API, found by pkg-config) and libpng-dev (CMake's FindPNG). Included by
# examples/trainer, benchmarks/ and fuzz/; scripts/lib/install-deps.sh installs both.
if(NOT TARGET patchgcl_image_codecs)
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(PATCHGCL_TURBOJPEG QUIET IMPORTED_TARGET libturbojpeg)
  endif()
  find_package(PNG QUIET)
  if(NOT TARGET PkgConfig::PATCHGCL_TURBOJPEG OR NOT TARGET PNG::PNG)
    message(FATAL_ERROR "patchgcl: the example trainer reads images with libjpeg-turbo (TurboJPEG) and libpng: "
                        "apt-get install pkg-config libturbojpeg0-dev libpng-dev (scripts/lib/install-deps.sh does), "
                        "or configure with -DPATCHGCL_BUILD_EXAMPLES=OFF")
  endif()
  add_library(patchgcl_image_codecs INTERFACE)
  target_link_libraries(patchgcl_image_codecs INTERFACE PkgConfig::PATCHGCL_TURBOJPEG PNG::PNG)
endif()
