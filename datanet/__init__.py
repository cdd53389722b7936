"""datanet: community-owned AI datasets with validated intake and on-chain attribution."""

from datanet._logging import install_filters as _install_filters

__version__ = "0.1.0"

_install_filters()
