// The translation unit that builds the test executables' precompiled header
// (patchgcl_test_pch in cmake/test_build.cmake); it has no code of its own.
