"""stylecore: style-transfer methods, metrics and GANs over ``(B, C, H, W)`` tensors.

A pure PyTorch library: it never imports Django or Celery. Images are float
tensors in [0, 1] with shape ``(B, 3, H, W)`` unless a function says otherwise.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
