"""datanet: community-owned AI datasets with validated intake and on-chain attribution."""

__version__ = "0.1.0"
