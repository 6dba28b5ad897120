"""``docs/configuration.md``: every properties key, substitution, profiles, launcher, KCL 3.x."""

from __future__ import annotations

from collections.abc import Mapping

from ._config_api import UNSETTABLE
from ._markdown import generated_notice, render
from .kcl3 import kcl3_parts
from .keys import key_sections, reason_table
from .launcher import _launcher_facts, launcher_parts
from .rules import profile_parts, substitution_parts

__all__ = ["configuration_reference"]

#: Who reads the KCL 1.x keys (``KeySpec.source``): section title and intro, in page order.
_SOURCES: Mapping[str, tuple[str, str]] = {
    "configurator": (
        "Application, stream and credentials",
        "Read by name by KCL 1.15.3's `KinesisClientLibConfigurator`.",
    ),
    "kcl": (
        "Worker settings",
        "Each key calls the setter `with<Key>` of `KinesisClientLibConfiguration` "
        "(the configurator also accepts the key with its first letter upper-cased; "
        "`kclpy-local properties check` asks for the spelling below).",
    ),
    "multilang": (
        "Multilang daemon",
        "Read by `MultiLangDaemonConfig`, the daemon's own configuration.",
    ),
    "launcher": (
        "kclpy-local launcher",
        "Read by the kclpy-local launcher before the stock configuration; stock KCL 1.x "
        "ignores them, so a file that sets them still works there. `cloudWatchEndpoint` "
        "and `isCBORProtocolDisabled` are named as in the unmerged upstream pull request "
        "#785 (amazon-kinesis-client); the others are kclpy-local's own.",
    ),
}


def configuration_reference() -> str:
    """``docs/configuration.md``: every properties key, substitution, profiles, launcher."""
    launcher = _launcher_facts()
    source = f"kclpy_local/_config/, {launcher.source} and kclpy_local/_docgen/"
    parts = {
        "notice": generated_notice(source),
        "kcl1_keys": "\n".join(key_sections(1, _SOURCES)),
        "kcl1_unsettable": "\n".join(reason_table(UNSETTABLE[1])),
        **launcher_parts(launcher),
        **substitution_parts(),
        **profile_parts(),
        **kcl3_parts(),
    }
    return render("configuration.md", parts)
