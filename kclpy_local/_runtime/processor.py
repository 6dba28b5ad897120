"""The record processor interface (the KCL 2.x/3.x lifecycle, on every daemon)."""

from __future__ import annotations

import abc

from .._protocol.messages import Initialize, ProcessRecords
from .checkpointer import Checkpointer

__all__ = ["RecordProcessor"]


class RecordProcessor(abc.ABC):
    """Base class of a record processor: one instance processes one shard.

    The daemon calls, in order: :meth:`initialize` once; :meth:`process_records`
    zero or more times; then exactly one of :meth:`lease_lost`,
    :meth:`shard_ended` or :meth:`shutdown_requested` (which may be followed by
    the end of input). On a KCL 1.x daemon, ``shutdown`` with reason ZOMBIE
    arrives as :meth:`lease_lost` and TERMINATE as :meth:`shard_ended`.

    Every method but :meth:`initialize` is abstract, because each is a decision
    about checkpointing. An exception from any of them is never acknowledged:
    by default the process reports it and exits non-zero, the daemon stops,
    and the work resumes from the last checkpoint.
    """

    def initialize(self, shard: Initialize) -> None:  # noqa: B027 - optional hook
        """Called once, before any records. No checkpointer is available here."""

    @abc.abstractmethod
    def process_records(self, batch: ProcessRecords, checkpointer: Checkpointer) -> None:
        """Process ``batch.records``; checkpoint when it suits the application."""

    @abc.abstractmethod
    def lease_lost(self) -> None:
        """Another worker owns the shard now. Do not checkpoint; release resources."""

    @abc.abstractmethod
    def shard_ended(self, checkpointer: Checkpointer) -> None:
        """The shard is closed and fully read. You must call ``checkpointer.checkpoint()``."""

    @abc.abstractmethod
    def shutdown_requested(self, checkpointer: Checkpointer) -> None:
        """The worker is shutting down gracefully: checkpoint what has been processed."""
