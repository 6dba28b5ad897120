"""Test helpers for record processors: a scripted daemon, transcripts, fixtures.

Test a processor with no Java::

    from kclpy_local.testing import ScriptedDaemon, Transcript

    def test_my_processor():
        outcome = ScriptedDaemon(Transcript.load("tests/my.jsonl")).run(MyProcessor())
        outcome.assert_matches()

Test it end to end (the real KCL daemon, the embedded emulator) with the
pytest fixtures ``kclpy_stream`` and ``kclpy_processor`` (see
:mod:`kclpy_local.testing.pytest_plugin`), or with :class:`LocalStream` and
:class:`ProcessorRun` directly.
"""

from typing import TYPE_CHECKING, Any

from ._scripted import Outcome as Outcome
from ._scripted import ScriptedDaemon as ScriptedDaemon
from ._transcript import Step as Step
from ._transcript import Transcript as Transcript

if TYPE_CHECKING:
    from ._local import LocalStream as LocalStream
    from ._local import ProcessorRun as ProcessorRun
    from ._local import unique_name as unique_name

_LAZY = ("LocalStream", "ProcessorRun", "unique_name")


def __getattr__(name: str) -> Any:
    # boto3 and the daemon are imported on first use only: the pytest plugin
    # lives in this package and is loaded by every pytest run.
    if name in _LAZY:
        from . import _local

        return getattr(_local, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "LocalStream",
    "Outcome",
    "ProcessorRun",
    "ScriptedDaemon",
    "Step",
    "Transcript",
    "unique_name",
]
