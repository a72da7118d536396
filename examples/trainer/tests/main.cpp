// Catch2's main, and the one definition of stb's decoders and encoders (image_io.hpp) for the
// trainer's tests. No LibTorch here: this file compiles in seconds, without the precompiled header.
#define CATCH_CONFIG_MAIN
#define PATCHGCL_TRAINER_STB_IMPLEMENTATION
#include "image_io.hpp"

#include <catch2/catch.hpp>
