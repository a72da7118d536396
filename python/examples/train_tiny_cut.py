"""A few training steps of a tiny CUT-style translator with patchgcl.GraphNCELoss as the
contrastive term (PatchGCL's setting: the graph loss on the generator's encoder features of x
and G(x), plus a least-squares GAN loss). Random images; CPU is enough.

    python python/examples/train_tiny_cut.py --steps 5
"""

import argparse

import patchgcl
import torch
from torch import nn


class Generator(nn.Module):
    """Encoder (two conv layers, whose features the contrastive loss compares) and decoder."""

    def __init__(self, width=8):
        super().__init__()
        self.encoder = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU()),
                nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU()),
            ]
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 3, 3, padding=1),
            nn.Tanh(),
        )

    def features(self, x):
        feats = []
        for layer in self.encoder:
            x = layer(x)
            feats.append(x)
        return feats

    def forward(self, x):
        return self.decoder(self.features(x)[-1])


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)

    netG = Generator()
    netD = nn.Sequential(nn.Conv2d(3, 8, 4, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(8, 1, 3, padding=1))
    # netF of PatchGCL: the graph loss over the encoder's two layers (8 and 16 channels)
    netF = patchgcl.GraphNCELoss([8, 16], num_patches=32, nc=16)
    opt_G = torch.optim.Adam(list(netG.parameters()) + list(netF.parameters()), lr=2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))

    losses = []
    for step in range(args.steps):
        real_A = torch.rand(2, 3, args.size, args.size) * 2 - 1
        real_B = torch.rand(2, 3, args.size, args.size) * 2 - 1
        fake_B = netG(real_A)

        opt_D.zero_grad()
        loss_D = 0.5 * ((netD(fake_B.detach()) ** 2).mean() + ((netD(real_B) - 1) ** 2).mean())
        loss_D.backward()
        opt_D.step()

        opt_G.zero_grad()
        loss_gan = ((netD(fake_B) - 1) ** 2).mean()
        loss_gcl = netF(netG.features(fake_B), netG.features(real_A))  # G(x)'s features, then x's
        (loss_gan + loss_gcl).backward()
        opt_G.step()
        losses.append((loss_D.item(), loss_gan.item(), loss_gcl.item()))
        print(f"step {step}: D {loss_D.item():.4f}  G_GAN {loss_gan.item():.4f}  GraphNCE {loss_gcl.item():.4f}")
    return losses


if __name__ == "__main__":
    main()
