"""Test helpers for record processors: a scripted daemon, transcripts, fixtures.

Test a processor with no Java::

    from kclpy_local.testing import ScriptedDaemon, Transcript

    def test_my_processor():
        outcome = ScriptedDaemon(Transcript.load("tests/my.jsonl")).run(MyProcessor())
        outcome.assert_matches()
"""

from ._scripted import Outcome as Outcome
from ._scripted import ScriptedDaemon as ScriptedDaemon
from ._transcript import Step as Step
from ._transcript import Transcript as Transcript

__all__ = ["Outcome", "ScriptedDaemon", "Step", "Transcript"]
