#pragma once

/// patchgcl's version, kept in step with `project(PatchGCL VERSION ...)` in CMakeLists.txt.
#define PATCHGCL_VERSION_MAJOR 0
#define PATCHGCL_VERSION_MINOR 1
#define PATCHGCL_VERSION_PATCH 0
#define PATCHGCL_VERSION_STRING "0.1.0"
