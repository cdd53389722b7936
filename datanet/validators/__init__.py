"""datanet.validators."""
