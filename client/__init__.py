"""The ``beacon`` client: normalisation, hashing, the HTTP SDK and the command line.

It never imports Django or the exchange's apps, so members can install and run it alone.
"""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("beacon-exchange")
except metadata.PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"
