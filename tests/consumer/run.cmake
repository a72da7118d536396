# ctest driver of install_and_consume: install the package from a fresh build tree into PREFIX,
# then build and run the consumer project against that prefix alone.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()

# The build's choice of LibTorch target, compiler launcher (ccache) and link flags, passed on.
set(_pgcl_forward -DCaffe2_DIR=${Caffe2_DIR} -DPATCHGCL_TORCH_CPU_ONLY=${PATCHGCL_TORCH_CPU_ONLY}
    "-DCMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER}" "-DCMAKE_EXE_LINKER_FLAGS=${OUTER_EXE_LINKER_FLAGS}")
# The build's prefixes, so that a wheel's LibTorch is found there rather than the system's
# (TorchConfig.cmake's find_library would otherwise take Debian's libtorch.so).
string(REPLACE "|" "\\;" _pgcl_outer_prefixes "${OUTER_PREFIX_PATH}")
list(APPEND _pgcl_forward "-DCMAKE_PREFIX_PATH=${_pgcl_outer_prefixes}")

file(REMOVE_RECURSE ${PREFIX} ${CONSUMER_BINARY} ${CONSUMER_BINARY}-subdir)
set(pkg_build ${CONSUMER_BINARY}-package-build)
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${pkg_build} -DCMAKE_INSTALL_PREFIX=${PREFIX} -DTorch_DIR=${Torch_DIR} ${_pgcl_forward}
    -DPATCHGCL_BUILD_TESTS=OFF -DPATCHGCL_BUILD_EXAMPLES=OFF -DPATCHGCL_BUILD_BENCHMARKS=OFF)
run(${CMAKE_COMMAND} --install ${pkg_build})
if(NOT EXISTS ${PREFIX}/lib/cmake/PatchGCL/PatchGCLConfigVersion.cmake AND
   NOT EXISTS ${PREFIX}/lib64/cmake/PatchGCL/PatchGCLConfigVersion.cmake)
  message(FATAL_ERROR "install did not produce PatchGCLConfigVersion.cmake under ${PREFIX}")
endif()
file(GLOB _pgcl_config_dir LIST_DIRECTORIES true ${PREFIX}/lib*/cmake/PatchGCL)
run(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE} -B ${CONSUMER_BINARY} -DPatchGCL_DIR=${_pgcl_config_dir}
    -DTorch_DIR=${Torch_DIR} ${_pgcl_forward} -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${CONSUMER_BINARY})
run(${CONSUMER_BINARY}/consumer)

# The same consumer with the source tree vendored through add_subdirectory.
run(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE} -B ${CONSUMER_BINARY}-subdir -DPATCHGCL_SOURCE_DIR=${SOURCE_DIR}
    -DTorch_DIR=${Torch_DIR} ${_pgcl_forward} -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${CONSUMER_BINARY}-subdir)
run(${CONSUMER_BINARY}-subdir/consumer)
