"""CUDA tensors through the same ops (the library's CPU build dispatches ATen to CUDA). Skipped,
with the reason, where torch has no CUDA device."""
import torch

import patchgcl
import patchgcl.functional as F
from conftest import cuda


@cuda
def test_losses_on_cuda_match_cpu():
    for make in (lambda: patchgcl.GraphNCELoss([4, 6], num_patches=16, nc=8),
                 lambda: patchgcl.PatchNCELoss([4, 6], preset="put", num_patches=16, nc=8)):
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
    assert a.device.type == "cuda" and torch.equal(a.cpu(), F.cosine_adjacency(f))
    abar = F.normalize_adjacency(a, self_loops="double")
    assert torch.allclose(abar.cpu(), F.normalize_adjacency(a.cpu(), self_loops="double"))
