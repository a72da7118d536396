"""FID and KID reference values for the trainer's evaluation (examples/trainer/eval/fid_kid.hpp).

    PYTHONPATH=python /usr/bin/python3 tests/reference/fid_kid_reference.py           # writes tests/fixtures/fid_kid.pgt
    PYTHONPATH=python /usr/bin/python3 tests/reference/fid_kid_reference.py --check   # regenerate, compare bytes

Needs numpy, scipy and torch (Debian: python3-numpy python3-scipy python3-torch; torch only to
write the .pgt file). The formulas are restated from the public descriptions, nothing copied:

FID, as pytorch-fid's `calculate_frechet_distance` computes it: numpy mean and `np.cov(rowvar=False)`
(1/(N-1)), `scipy.linalg.sqrtm(sigma1 @ sigma2, disp=False)`, with its fallbacks (an offset of
1e-6 on the diagonals if the result is not finite, the real part if the imaginary part is
negligible), then `|mu1 - mu2|^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr(covmean)`.

KID, as "Demystifying MMD GANs" (Binkowski et al. 2018) and torch-fidelity compute it: the cubic
polynomial kernel k(x, y) = (x.y / d + 1)^3 (sklearn's polynomial_kernel with gamma = 1/d,
coef0 = 1), the 'unbiased' estimator
    (sum_{i!=j} Kxx + sum_{i!=j} Kyy) / (m (m-1)) - 2 sum Kxy / m^2,
averaged over subsets. The subsets are drawn here with numpy and stored in the fixture (`kid.*_idx`,
[S, m]), so the C++ test evaluates the same formula on the same subsets; the C++ sampler is tested
for its own properties.

Cases (float64 features, written as float64):
  full:     N1 = 160, N2 = 140, D = 16: full-rank covariances, different means and covariances.
  few:      N1 = 20,  N2 = 25,  D = 32: fewer images than dimensions (rank-deficient covariances),
            the usual situation with 2048-D Inception features and a small test set.
  close:    two draws from one distribution (N = 200, D = 8): FID near 0, KID near 0 (either sign).
"""

import argparse
import filecmp
import os
import sys
import tempfile

import numpy as np
import scipy
import scipy.linalg
import torch

try:  # the reference package (PYTHONPATH=python, python/README.md) once it exists on this branch
    from patchgcl_reference import pgt
except ImportError:  # before: pgt.py next to this script
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import pgt  # noqa: E402


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    diff = mu1 - mu2
    covmean, _ = scipy.linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"imaginary component {np.max(np.abs(covmean.imag)):g}")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid(x, y):
    return frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))


def polynomial_kernel(x, y):
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x, y):
    m = x.shape[0]
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.sum() / (m * m))


def mixing(rng, d, scale):
    return rng.standard_normal((d, d)) * scale / np.sqrt(d) + np.eye(d)


def make_case(rng, n1, n2, d, shift, scale, subsets, m):
    """x ~ N(0, Mx^T Mx); y ~ N(shift, My^T My), My = Mx when scale is None (one distribution)."""
    mix_x = mixing(rng, d, 0.3)
    mix_y = mix_x if scale is None else mixing(rng, d, scale)
    x = rng.standard_normal((n1, d)) @ mix_x
    y = rng.standard_normal((n2, d)) @ mix_y + shift
    x_idx = np.stack([rng.choice(n1, m, replace=False) for _ in range(subsets)])
    y_idx = np.stack([rng.choice(n2, m, replace=False) for _ in range(subsets)])
    mmds = np.array([mmd2_unbiased(x[i], y[j]) for i, j in zip(x_idx, y_idx)])
    return {
        "x": torch.from_numpy(x),
        "y": torch.from_numpy(y),
        "fid": torch.tensor(fid(x, y), dtype=torch.float64),
        "kid.x_idx": torch.from_numpy(x_idx.astype(np.int64)),
        "kid.y_idx": torch.from_numpy(y_idx.astype(np.int64)),
        "kid.mmd2": torch.from_numpy(mmds),
        "kid.mean": torch.tensor(float(mmds.mean()), dtype=torch.float64),
        "kid.std": torch.tensor(float(mmds.std()), dtype=torch.float64),
    }


def generate(path):
    rng = np.random.RandomState(2024)
    tensors = {}
    for name, args in (
        ("full", (160, 140, 16, 0.5, 0.8, 6, 100)),
        ("few", (20, 25, 32, 0.3, 0.6, 4, 12)),
        ("close", (200, 200, 8, 0.0, None, 3, 150)),
    ):
        for key, value in make_case(rng, *args).items():
            tensors[f"{name}.{key}"] = value
    pgt.write(path, tensors, {"generator_numpy": np.__version__, "generator_scipy": scipy.__version__, "seed": 2024})


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(here, "..", "fixtures", "fid_kid.pgt"))
    parser.add_argument("--check", action="store_true", help="regenerate into a temp file and compare bytes")
    args = parser.parse_args()
    if not args.check:
        generate(args.out)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "fid_kid.pgt")
        generate(path)
        same = filecmp.cmp(path, args.out, shallow=False)
        print("identical" if same else "DIFFERENT: fid_kid.pgt")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
