"""datanet.anchoring."""
