"""datanet.privacy."""
