"""patchgcl::functional from Python: each function calls the C++ function of the same name
(checks included) through its op, whose schema types every option
(torch.ops.patchgcl.<name>.default._schema). Options are keywords named as in C++ (the enums by
name in snake case: comparison="greater", self_loops="double", direction="both",
check_finite="never"); what is not given keeps the C++ default."""

from ._ops import ops


def cosine_adjacency(features, **options):
    """Eq. 1: A_ij = [cos(f_i, f_j) >= threshold] of [B, N, C] or [N, C] features (no gradient).
    Options: threshold, comparison, diagonal, eps, normalize, check_finite."""
    return ops.cosine_adjacency(features, **options)


def normalize_adjacency(adjacency, **options):
    """Abar = D^-1/2 (A + s I) D^-1/2 (or D^-1 M). Options: normalization, self_loops, check_finite."""
    return ops.normalize_adjacency(adjacency, **options)


def info_nce(output, input, **options):
    """Eq. 4 / PatchNCE / PUT between the output's nodes (G(x)) and the input's (x).
    Options: temperature, diagonal_value, direction, negatives, pruning, hard_negatives,
    reduction, check_finite."""
    return ops.info_nce(output, input, **options)


def l2_normalize(x, **options):
    """x / max(||x||, eps) (mode="clamp") or x / (||x|| + eps) (mode="add") along the last
    dimension. Options: eps (1e-12), mode, check_finite."""
    return ops.l2_normalize(x, **options)


def random_patch_ids(feature_map, num_patches):
    """num_patches distinct locations h * W + w of a [B, C, H, W] map (torch's generator)."""
    return ops.random_patch_ids(feature_map, num_patches)


def sample_patches(feature_map, patch_ids, **options):
    """[B, N, C] features of a [B, C, H, W] map at patch_ids. Options: check_finite."""
    return ops.sample_patches(feature_map, patch_ids, **options)


def hop_features(x, abar, hops, **options):
    """[X, Abar X, ..., Abar^hops X] along channels (Eq. 2-3). Options: check_finite."""
    return ops.hop_features(x, abar, hops, **options)


def shared_hop_features(output, input, abar, hops, **options):
    """hop_features of two graphs sharing Abar: (output's, differentiable; input's, detached)."""
    return ops.shared_hop_features(output, input, abar, hops, **options)


def normalized_laplacian(abar):
    """L = I - Abar."""
    return ops.normalized_laplacian(abar)


def laplacian_eigenvectors(abar, k, **options):
    """(eigenvalues [B, k], eigenvectors [B, N, k]) of I - Abar, ascending, sign-fixed."""
    return ops.laplacian_eigenvectors(abar, k, **options)
