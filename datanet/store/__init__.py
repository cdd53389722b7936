"""datanet.store."""
