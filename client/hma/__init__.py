"""The ``threatexchange`` extension that makes Beacon an exchange for HMA.

Register it with the library's own mechanism::

    threatexchange config extensions add client.hma

or list ``BeaconSignalExchangeAPI`` in an HMA ``omm_config`` (see docs/integrations/hma.md).
Needs the ``threatexchange`` package (``pip install "beacon-exchange[hma]"``).
"""

from __future__ import annotations

from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest

from client.hma.api import (
    API_NAME,
    BeaconCheckpoint,
    BeaconCollabConfig,
    BeaconCredentials,
    BeaconSignalExchangeAPI,
    BeaconSignalMetadata,
    BeaconSignalRecord,
)

__all__ = [
    "API_NAME",
    "TX_MANIFEST",
    "BeaconCheckpoint",
    "BeaconCollabConfig",
    "BeaconCredentials",
    "BeaconSignalExchangeAPI",
    "BeaconSignalMetadata",
    "BeaconSignalRecord",
]

TX_MANIFEST = ThreatExchangeExtensionManifest(apis=(BeaconSignalExchangeAPI,))
