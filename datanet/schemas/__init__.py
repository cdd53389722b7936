"""datanet.schemas."""
