# LibTorch for the CPU only, from a LibTorch that was built with CUDA: the PyPI torch wheel (its
# torch/ folder) or a cu* pytorch.org zip, on a machine without the CUDA libraries LibTorch's own
# TorchConfig.cmake links (cuDNN, NCCL, cuSPARSELt, cuFile, NVSHMEM...).
#
#   cmake -DPATCHGCL_TORCH_CPU_ONLY=ON -DTorch_DIR=<torch>/share/cmake/Torch ...
#
# Instead of find_package(Torch) it defines the imported target `torch` from libtorch_cpu.so,
# libc10.so and the headers, as TorchConfig.cmake would for a CPU build: same include folders,
# same definitions, C++20 for LibTorch >= 2.14 (its headers #error under C++17).
#
# libtorch_cpu.so of the wheel still needs libcudart and libcupti (CUDA 13 for torch >= 2.10 on
# PyPI) when it is loaded; its RPATH looks in <site-packages>/nvidia/cu13/lib, where pip puts
# them. scripts/lib/torch-wheel.sh lays the download out the same way, with links into the CUDA
# toolkit (/usr/local/cuda*/lib64): no LD_LIBRARY_PATH needed. Other layouts: set
# PATCHGCL_TORCH_EXTRA_RPATH to the folder that holds libcudart.so.13 and libcupti.so.13.
if(TARGET torch)
  return()
endif()
if(NOT Torch_DIR OR NOT EXISTS "${Torch_DIR}/TorchConfigVersion.cmake")
  message(FATAL_ERROR "PATCHGCL_TORCH_CPU_ONLY needs Torch_DIR=<libtorch>/share/cmake/Torch (got '${Torch_DIR}')")
endif()
get_filename_component(_pgcl_torch_root "${Torch_DIR}/../../.." ABSOLUTE)
foreach(_pgcl_lib torch_cpu c10)
  find_library(PATCHGCL_TORCH_${_pgcl_lib}_LIBRARY ${_pgcl_lib} PATHS "${_pgcl_torch_root}/lib" NO_DEFAULT_PATH)
  if(NOT PATCHGCL_TORCH_${_pgcl_lib}_LIBRARY)
    message(FATAL_ERROR "PATCHGCL_TORCH_CPU_ONLY: lib${_pgcl_lib}.so not found in ${_pgcl_torch_root}/lib")
  endif()
endforeach()

# TorchConfigVersion.cmake sets PACKAGE_VERSION; keep the caller's variables intact.
set(_pgcl_saved_package_version "${PACKAGE_VERSION}")
include("${Torch_DIR}/TorchConfigVersion.cmake")
set(Torch_VERSION "${PACKAGE_VERSION}")
set(PACKAGE_VERSION "${_pgcl_saved_package_version}")
set(Torch_FOUND TRUE)

add_library(torch INTERFACE IMPORTED)
set(TORCH_INCLUDE_DIRS "${_pgcl_torch_root}/include" "${_pgcl_torch_root}/include/torch/csrc/api/include")
set(TORCH_LIBRARIES torch)
set_target_properties(torch PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "${TORCH_INCLUDE_DIRS}"
  # torch_cpu's own interface definitions in the wheel's Caffe2Targets.cmake (c10d headers use them).
  INTERFACE_COMPILE_DEFINITIONS "USE_DISTRIBUTED;USE_C10D_GLOO;USE_RPC;USE_TENSORPIPE"
  # As TorchConfig.cmake: libtorch_cpu is linked even though no symbol of it is referenced
  # directly (its operator registrations are static initialisers).
  INTERFACE_LINK_LIBRARIES "-Wl,--no-as-needed,${PATCHGCL_TORCH_torch_cpu_LIBRARY} -Wl,--as-needed;${PATCHGCL_TORCH_c10_LIBRARY}")
if(PATCHGCL_TORCH_EXTRA_RPATH)
  set_property(TARGET torch APPEND PROPERTY INTERFACE_LINK_OPTIONS
    # DT_RPATH, not DT_RUNPATH: only the former also serves libtorch_cpu.so's own dependencies.
    "LINKER:--disable-new-dtags" "LINKER:-rpath-link,${PATCHGCL_TORCH_EXTRA_RPATH}" "LINKER:-rpath,${PATCHGCL_TORCH_EXTRA_RPATH}")
endif()
if(Torch_VERSION VERSION_GREATER_EQUAL 2.14)
  target_compile_features(torch INTERFACE cxx_std_20)
endif()
message(STATUS "patchgcl: LibTorch ${Torch_VERSION}, CPU only, from ${_pgcl_torch_root} (PATCHGCL_TORCH_CPU_ONLY)")
