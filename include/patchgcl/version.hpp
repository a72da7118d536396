#pragma once

/// patchgcl's version: the one source of it. CMakeLists.txt reads the three numbers from here
/// for `project(PatchGCL VERSION ...)` and the package's version file.
#define PATCHGCL_VERSION_MAJOR 0
#define PATCHGCL_VERSION_MINOR 1
#define PATCHGCL_VERSION_PATCH 0

#define PATCHGCL_VERSION_STRINGIFY_(x) #x
#define PATCHGCL_VERSION_STRINGIFY(x) PATCHGCL_VERSION_STRINGIFY_(x)
/// "MAJOR.MINOR.PATCH", e.g. "0.1.0".
#define PATCHGCL_VERSION_STRING                      \
  PATCHGCL_VERSION_STRINGIFY(PATCHGCL_VERSION_MAJOR) \
  "." PATCHGCL_VERSION_STRINGIFY(PATCHGCL_VERSION_MINOR) "." PATCHGCL_VERSION_STRINGIFY(PATCHGCL_VERSION_PATCH)
