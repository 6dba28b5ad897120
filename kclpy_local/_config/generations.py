"""The KCL generations as objects: one :class:`Generation` per KCL line.

A generation carries what differs between KCL 1.x and KCL 3.x, and nothing else
branches on the generation number:

- its key table (:attr:`~Generation.keys`, :meth:`~Generation.lookup`) and value
  decoders (:attr:`~Generation.check_value`);
- its validation rules: one entry at a time (:attr:`~Generation.check_entry`), the
  rules across entries (:attr:`~Generation.check_values`) and the values the
  endpoint rules read (:attr:`~Generation.endpoint_values`);
- how its worker reads records with a file's values: whether by enhanced fan-out
  (:attr:`~Generation.reads_by_fanout`: never for 1.x; for 3.x as its daemon
  decides ``retrievalMode``) and whether its launcher speaks HTTP/2 to a local
  Kinesis endpoint (:attr:`~Generation.local_kinesis_http2`), so a command can check
  its Kinesis engine first;
- its translation (:meth:`~Generation.translate`): none for 1.x, whose files run
  as written; the 1.x-to-3.x translation for 3.x
  (:func:`~kclpy_local._config.translate.to_kcl3`);
- what names its jar lock and launcher: the lockfile name
  (:attr:`~Generation.lockfile`) and the launcher's argv shape
  (:meth:`~Generation.launcher_args`: the kclpy-local launchers of both
  generations take the properties file as their one argument, where the stock
  3.x ``MultiLangDaemon`` would take ``-p/--properties-file``);
- what the generation guard needs: the other generation (:attr:`~Generation.other`),
  whether its workers report worker metrics to the lease table, and whether KCL
  3.x's other items on the table block it;
- whether one application can consume several streams, and with which key
  (:attr:`~Generation.streams_key`: KCL 3.x's launcher reads ``streamNames``).

:data:`GENERATIONS` maps each number to its object; :func:`generation` looks one
up (``ValueError`` for an unknown number). Adding a generation means adding one
object here (and, in :mod:`kclpy_local._jvm`, its lockfile and launcher source).
Across the layers the generation still travels as its number (``--kcl 1|3``,
``kcl1.json``, the cache layout) and is resolved to its object once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Any

from . import kcl1_keys, kcl1_rules, kcl3_keys, kcl3_rules
from .document import Problem, ValuesCheck
from .keyspec import KeySpec
from .startup import KCL1_STARTUP, KCL3_STARTUP, StartupKey
from .translate import AnswersCbor, Translation, to_kcl3

__all__ = [
    "DEFAULT_GENERATION",
    "GENERATIONS",
    "KCL1",
    "KCL3",
    "Generation",
    "generation",
    "worker_generation",
]

#: The generation used when none is named (``--kcl``'s default).
DEFAULT_GENERATION = 1

EntryRule = Callable[[str, str, "int | None"], list[Problem]]
ValuesRule = Callable[[ValuesCheck], list[Problem]]
Translate = Callable[[Mapping[str, str], "str | None", "AnswersCbor | None"], Translation]


@dataclass(frozen=True, slots=True)
class Generation:
    """One KCL line: its keys, decoders, rules, translation, jars and guard facts.

    ``translator`` is ``None`` for a generation whose files run as written;
    ``properties_flag``, when set, is the option the launcher takes before the
    properties file (none: the file is the one argument); ``other`` is the
    generation the guard looks for on the lease table; ``reports_worker_metrics``:
    its workers write worker-metrics items to the lease table;
    ``blocked_by_kcl3_items``: it cannot start on a table that holds KCL 3.x's
    items besides leases; ``startup``: the keys added on local endpoints when
    absent (:mod:`~kclpy_local._config.startup`); ``streams_key``: the key that names
    several streams for one application (the KCL's multi-stream mode), ``None`` when the
    generation consumes one stream.
    """

    number: int
    keys: tuple[KeySpec, ...]
    lookup: Callable[[str], KeySpec | None]
    check_value: Callable[[KeySpec, str], str | None]
    check_entry: EntryRule
    check_values: ValuesRule
    endpoint_values: Callable[[Mapping[str, str]], dict[str, str]]
    reads_by_fanout: Callable[[Mapping[str, str]], bool]
    local_kinesis_http2: Callable[[Mapping[str, str]], bool]
    translator: Translate | None
    other: int
    reports_worker_metrics: bool
    blocked_by_kcl3_items: bool
    properties_flag: str | None = None
    startup: tuple[StartupKey, ...] = ()
    streams_key: str | None = None

    @property
    def label(self) -> str:
        """``1.x``, ``3.x``: how messages name the generation."""
        return f"{self.number}.x"

    @property
    def lockfile(self) -> str:
        """The name of the generation's jar lockfile (``kcl<N>.json``)."""
        return f"kcl{self.number}.json"

    @property
    def translates(self) -> bool:
        """Whether a 1.x file is translated before this generation runs it."""
        return self.translator is not None

    @property
    def is_default(self) -> bool:
        """Whether this is the generation used when none is named."""
        return self.number == DEFAULT_GENERATION

    @property
    def kcl_option(self) -> str:
        """The CLI option that selects this generation (``" --kcl 3"``), ``""`` for the default."""
        return "" if self.is_default else f" --kcl {self.number}"

    @property
    def check_option(self) -> str:
        """The options of ``kclpy-local properties check`` that check a file as
        kclpy-local runs it on this generation (translated, when it translates)."""
        return self.kcl_option + (" --translated" if self.translates else "")

    def translate(
        self,
        values: Mapping[str, str],
        profile: str | None,
        answers_cbor: AnswersCbor | None = None,
    ) -> Translation:
        """``values`` as this generation runs them; unchanged (no notes) without a
        translator. ``answers_cbor``: whether a CloudWatch endpoint answers the Smithy
        RPC v2 CBOR protocol (see :func:`~kclpy_local._config.translate.to_kcl3`)."""
        if self.translator is None:
            return Translation(dict(values))
        return self.translator(values, profile, answers_cbor)

    def streams(self, values: Mapping[str, str]) -> tuple[str, ...]:
        """The streams resolved ``values`` name for this generation: the names of
        :attr:`streams_key` when it is set (several streams; trimmed, each once), else
        ``streamName``'s one (none when it is unset or empty)."""
        if self.streams_key is not None and self.streams_key in values:
            names = kcl3_keys.stream_names(values[self.streams_key])
            return tuple(dict.fromkeys(name for name in names if name))
        name = values.get("streamName", "").strip()
        return (name,) if name else ()

    def several_streams(self, values: Mapping[str, str]) -> bool:
        """Whether ``values`` name their streams with :attr:`streams_key` (multi-stream mode)."""
        return self.streams_key is not None and self.streams_key in values

    def launcher_args(self, properties: str) -> list[str]:
        """The launcher's arguments for the properties file ``properties``."""
        return [self.properties_flag, properties] if self.properties_flag else [properties]


#: The rules a generation takes from its rules module, by the names of its fields.
_RULES = (
    "check_entry",
    "check_values",
    "endpoint_values",
    "reads_by_fanout",
    "local_kinesis_http2",
)


def _from_modules(number: int, keys: ModuleType, rules: ModuleType, **facts: Any) -> Generation:
    """The generation whose key table and decoders are those of ``keys``
    (``KCL<N>_KEYS``, ``lookup``, ``check_value``) and whose rules are the functions of
    ``rules`` named as the fields (:data:`_RULES`); ``facts`` are the other fields."""
    return Generation(
        number=number,
        keys=getattr(keys, f"KCL{number}_KEYS"),
        lookup=keys.lookup,
        check_value=keys.check_value,
        **{name: getattr(rules, name) for name in _RULES},
        **facts,
    )


KCL1 = _from_modules(
    1,
    kcl1_keys,
    kcl1_rules,
    translator=None,
    other=3,
    reports_worker_metrics=False,
    blocked_by_kcl3_items=True,
    startup=KCL1_STARTUP,
)

KCL3 = _from_modules(
    3,
    kcl3_keys,
    kcl3_rules,
    translator=to_kcl3,
    other=1,
    reports_worker_metrics=True,
    blocked_by_kcl3_items=False,
    startup=KCL3_STARTUP,
    streams_key=kcl3_keys.STREAM_NAMES,
)

#: Every generation by number.
GENERATIONS: Mapping[int, Generation] = MappingProxyType({g.number: g for g in (KCL1, KCL3)})


def generation(number: int | Generation) -> Generation:
    """The generation ``number`` (a :class:`Generation` is returned as it is).

    ``ValueError`` when there is none.
    """
    if isinstance(number, Generation):
        return number
    found = GENERATIONS.get(number)
    if found is None:
        raise ValueError(f"no key table for KCL generation {number!r}")
    return found


def worker_generation(reports_worker_metrics: bool) -> Generation:
    """The generation of a worker seen on a lease table: the one whose workers
    report worker metrics when it does, else the one whose workers do not."""
    return next(
        g for g in GENERATIONS.values() if g.reports_worker_metrics == reports_worker_metrics
    )
