#pragma once

/// patchgcl: graph- and patch-contrastive losses for unpaired image translation, on LibTorch.
///
/// The folders read like the method (docs/ has one page per concept):
///   Eq. 1    adjacency       functional::cosine_adjacency, functional::normalize_adjacency
///   Eq. 2-3  graph conv      TAGConv, functional::tag_conv
///   Eq. 5-8  graph pooling   TopKPool, functional::topk_pool
///   Eq. 4, 9 contrastive     functional::info_nce (also CUT's PatchNCE and PUT's pruning)
///   Eq. 10   composed losses GraphNCELoss (PatchGCL), PatchNCELoss (CUT, PUT)
///   Fig. 9   diagnostics     GraphNCELoss::inspect (the graphs forward builds),
///                            functional::laplacian_eigenvectors (the graph's spectrum)
///            weights from the Python code  io::load_parameters, io::read_safetensors
///                                          (io/safetensors.hpp, PatchGCL::safetensors), io::read_tensor_file
///            CPU threads (LibTorch + OpenBLAS)  set_num_threads
///
/// The two sides of every function are named `output` (the output image G(x): the paper's `V`,
/// `v_i`; CUT's queries) and `input` (the input image x: `Z`, `z_i`; CUT's keys), in that order.
///
/// Layers, lowest first; every include points to the same or a lower layer:
///   version.hpp, compat.hpp   the version; the one place LibTorch 1.13 and 2.x differ
///   threads.hpp               set_num_threads: LibTorch's and OpenBLAS's thread pools (no patchgcl includes)
///   options/                  option structs and enums (FiniteCheck in options/finite_check.hpp)
///   detail/checks.hpp         argument checks shared by functional/ and modules/ (patchgcl::detail)
///   detail/numeric.hpp        numeric helpers: exact power-of-two scaling, the dtype a computation runs in
///   detail/integer.hpp        the one parser of decimal integers read from text (overflow- and range-checked)
///   functional/               public functions check their arguments once, then call their
///                             `functional::detail` function, which computes
///   modules/detail/           below the modules: the loop shared by the two losses (layers.hpp)
///                             and their fused autograd nodes, on functional/ math only
///   modules/                  torch::nn modules: they hold the weights, check once and call the
///                             functional::detail functions
///   io/                       weights files: .pgt (LibTorch only); safetensors (io/safetensors.hpp,
///                             nlohmann-json: not included here, like distributed.hpp)
///   patchgcl.hpp              everything

#include <patchgcl/compat.hpp>
#include <patchgcl/version.hpp>

#include <patchgcl/options/adjacency.hpp>
#include <patchgcl/options/finite_check.hpp>
#include <patchgcl/options/graph_nce.hpp>
#include <patchgcl/options/info_nce.hpp>
#include <patchgcl/options/multi_layer_loss.hpp>
#include <patchgcl/options/patch_nce.hpp>
#include <patchgcl/options/tag_conv.hpp>
#include <patchgcl/options/topk_pool.hpp>

#include <patchgcl/functional/adjacency.hpp>
#include <patchgcl/functional/info_nce.hpp>
#include <patchgcl/functional/laplacian.hpp>
#include <patchgcl/functional/normalize.hpp>
#include <patchgcl/functional/patches.hpp>
#include <patchgcl/functional/tag_conv.hpp>
#include <patchgcl/functional/topk_pool.hpp>

#include <patchgcl/modules/graph_inspection.hpp>
#include <patchgcl/modules/graph_nce.hpp>
#include <patchgcl/modules/patch_nce.hpp>
#include <patchgcl/modules/tag_conv.hpp>
#include <patchgcl/modules/topk_pool.hpp>

#include <patchgcl/io/tensor_file.hpp>
#include <patchgcl/threads.hpp>
