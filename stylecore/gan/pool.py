"""History pool of generated images (Shrivastava et al., CVPR 2017), as in CycleGAN.

The discriminator sees a mix of the newest fakes and fakes from earlier
iterations, which damps oscillation between generator and discriminator.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["ImagePool"]


class ImagePool:
    """Keep up to ``size`` generated images; return a batch mixing new and stored ones.

    For each image of a batch: while the pool is not full it is stored and
    returned; once full, with probability 1/2 a random stored image is
    returned and replaced by the new one, otherwise the new one is returned.
    ``size=0`` returns the batch unchanged. Randomness comes from the pool's
    own ``torch.Generator``, so the pool's full state (images and generator)
    is in :meth:`state_dict` and a resumed run draws the same choices.

    Args:
        size: pool capacity (50 in CycleGAN).
        seed: seed of the pool's generator.

    Example:
        >>> pool = ImagePool(2, seed=0)
        >>> out = pool.query(torch.zeros(3, 3, 4, 4))
        >>> out.shape, len(pool)
        (torch.Size([3, 3, 4, 4]), 2)
    """

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` new fakes → ``(B, C, H, W)`` fakes for the discriminator (detached)."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for img in images:
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
                continue
            if float(torch.rand((), generator=self.generator)) < 0.5:
                idx = int(torch.randint(len(self.images), (), generator=self.generator))
                out.append(self.images[idx].to(img.device, img.dtype))
                self.images[idx] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        """Images (on CPU) and generator state."""
        return {"size": self.size, "generator": self.generator.get_state(),
                "images": [im.cpu() for im in self.images]}

    def load_state_dict(self, state: dict[str, Any], device: str | torch.device = "cpu") -> None:
        """Restore a state from :meth:`state_dict`, moving images to ``device``."""
        self.size = int(state["size"])
        self.generator.set_state(state["generator"])
        self.images = [im.to(device) for im in state["images"]]
