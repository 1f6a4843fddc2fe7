"""Networks with pretrained weights (feature extractors, encoders, decoders)."""
