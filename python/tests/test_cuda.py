"""CUDA tensors through the same ops (the library's CPU build dispatches ATen to CUDA). Skipped,
with the reason, where torch has no CUDA device."""

import patchgcl
import patchgcl.functional as F
import torch
from conftest import cuda


@cuda
def test_losses_on_cuda_match_cpu():
    for make in (
        lambda: patchgcl.GraphNCELoss([4, 6], num_patches=16, nc=8),
        lambda: patchgcl.PatchNCELoss([4, 6], preset="put", num_patches=16, nc=8),
    ):
        torch.manual_seed(0)
        cpu = make().double()
        gpu = make().double().cuda()
        gpu.load_state_dict(cpu.state_dict())
        g = torch.Generator().manual_seed(1)
        outs = [torch.randn(2, c, 8, 8, generator=g, dtype=torch.float64) for c in (4, 6)]
        ins = [torch.randn(2, c, 8, 8, generator=g, dtype=torch.float64) for c in (4, 6)]
        ids = [torch.randperm(64, generator=g)[:16] for _ in range(2)]
        expected = cpu(outs, ins, ids)
        expected.backward()
        loss = gpu([o.cuda() for o in outs], [i.cuda() for i in ins], [i.cuda() for i in ids])
        assert loss.device.type == "cuda"
        loss.backward()
        assert torch.allclose(loss.cpu(), expected, rtol=1e-9)
        for (name, p), q in zip(cpu.named_parameters(), gpu.parameters()):
            assert q.grad.device.type == "cuda" and torch.allclose(q.grad.cpu(), p.grad, rtol=1e-7, atol=1e-12), name


@cuda
def test_functional_on_cuda():
    f = torch.randn(2, 8, 3, dtype=torch.float64)
    a = F.cosine_adjacency(f.cuda())
    # cuBLAS and the CPU's BLAS round the cosines differently (~1e-16): the 0/1 entries are equal
    # except for a cosine within rounding of the threshold (0.1), where either answer is right.
    u = f / f.norm(dim=-1, keepdim=True)
    clear = ((u @ u.transpose(1, 2)) - 0.1).abs() > 1e-12
    assert a.device.type == "cuda" and torch.equal(a.cpu()[clear], F.cosine_adjacency(f)[clear])
    abar = F.normalize_adjacency(a, self_loops="double")
    assert torch.allclose(abar.cpu(), F.normalize_adjacency(a.cpu(), self_loops="double"))


def _small_cuda_case(make):
    torch.manual_seed(0)
    loss_fn = make().cuda()
    g = torch.Generator().manual_seed(1)
    outs = [torch.randn(2, c, 8, 8, generator=g).cuda().requires_grad_(True) for c in (4, 6)]
    ins = [torch.randn(2, c, 8, 8, generator=g).cuda() for c in (4, 6)]
    ids = [torch.randperm(64, generator=g)[:16].cuda() for _ in range(2)]
    return loss_fn, outs, ins, ids


LOSSES = (
    lambda: patchgcl.GraphNCELoss([4, 6], num_patches=16, nc=8),
    lambda: patchgcl.PatchNCELoss([4, 6], preset="put", num_patches=16, nc=8),
    lambda: patchgcl.PatchNCELoss([4, 6], num_patches=16, nc=8),
)


@cuda
def test_forward_backward_do_not_synchronise_with_the_host():
    """CUDA's sync-debug mode 'error' raises on any host synchronisation (.item(), a device-to-host
    copy, nonzero...): forward and backward must have none, sampled locations given or drawn."""
    for make in LOSSES:
        loss_fn, outs, ins, ids = _small_cuda_case(make)
        for given in (ids, None):
            loss_fn(outs, ins, given).backward()  # lazy initialisations outside the checked call
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("error")
            try:
                loss_fn(outs, ins, given).backward()
            finally:
                torch.cuda.set_sync_debug_mode("default")
