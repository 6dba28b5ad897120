"""Generate the reference documents ``docs/protocol.md`` and ``docs/configuration.md``.

Both are built from the sources of truth, so they cannot drift from them:

- :mod:`.protocol` walks the JSON Schema documents of the wire format
  (``kclpy_local/_protocol/wire/``), whose titles, descriptions, examples and
  ``x-`` annotations carry the text about each message and field;
- :mod:`.configuration` renders the properties key tables of KCL 1.x and 3.x
  (:mod:`.keys`), the launchers' constants read from their Java sources
  (:mod:`.launcher`), substitution and profile examples computed by the properties
  module (:mod:`.rules`) and a 1.x file translated for KCL 3.x (:mod:`.kcl3`).
  Everything taken from ``kclpy_local._config`` comes through :mod:`._config_api`.

``scripts/gen_docs.py`` writes the files; a unit test compares them with the
output of these functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .configuration import configuration_reference
from .protocol import protocol_reference

__all__ = ["DOCUMENTS", "configuration_reference", "protocol_reference"]

#: The generated documents: file name under ``docs/`` and the function producing it.
DOCUMENTS: Mapping[str, Callable[[], str]] = {
    "protocol.md": protocol_reference,
    "configuration.md": configuration_reference,
}
