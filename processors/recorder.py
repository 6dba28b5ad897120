"""Example processor: records every record it processes, checkpointing each batch.

Each processed record becomes one JSON line in the ledger file named by
``KCLPY_LOCAL_LEDGER`` (``kclpy-local run`` sets it to ``ledger.jsonl`` in the
run directory unless it is set; elsewhere the default is ``ledger.jsonl`` in
the working directory):
stream, shard, sequence number, sub-sequence number, partition key, data
(base64) and the time it was processed. The stream is the one the daemon
names on initialize (the kclpy-local KCL 3.x launcher does, so one application
on several streams tells them apart; their shard ids repeat), else null. The ledger is flushed before each checkpoint, so it
never claims less than what was checkpointed (at-least-once accounting).

When ``KCLPY_LOCAL_CHECKPOINTS`` names a file, the recorder also appends one JSON
line there where each shard starts (``"event": "initialize"``, with the
sequence number the daemon gave) and after each checkpoint the daemon accepted
(``"event": "checkpoint"``, with the sequence number checkpointed): shard,
event, sequence number, time and process id (and the stream, as in the
ledger). Record lines never go there.

Run by the daemon (``executableName = python3 processors/recorder.py``).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from typing import TextIO

from kclpy_local import (
    Checkpointer,
    Initialize,
    ProcessRecords,
    Record,
    RecordProcessor,
    RetryPolicy,
    ShutdownError,
    run,
)

log = logging.getLogger("recorder")
RETRY = RetryPolicy()


class RecorderProcessor(RecordProcessor):
    def __init__(self, ledger_path: str | None = None, checkpoints_path: str | None = None) -> None:
        self.ledger_path = ledger_path or os.environ.get("KCLPY_LOCAL_LEDGER", "ledger.jsonl")
        self.checkpoints_path = checkpoints_path or os.environ.get("KCLPY_LOCAL_CHECKPOINTS") or None
        self.shard_id = "?"
        self.stream_name: str | None = None
        self._ledger: TextIO | None = None
        self._checkpoints: TextIO | None = None
        self._last_sequence: str | None = None

    def _note(self, event: str, sequence_number: str | None) -> None:
        """One line in the checkpoint log, if there is one."""
        out = self._checkpoints
        if out is None:
            return
        out.write(json.dumps({
            "stream": self.stream_name,
            "shard": self.shard_id,
            "event": event,
            "sequence_number": sequence_number,
            "at": time.time(),
            "pid": os.getpid(),
        }) + "\n")
        out.flush()

    def initialize(self, shard: Initialize) -> None:
        self.shard_id = shard.shard_id
        self.stream_name = shard.stream_name
        self._last_sequence = shard.sequence_number
        self._ledger = open(self.ledger_path, "a", encoding="utf-8")  # noqa: SIM115
        if self.checkpoints_path:
            self._checkpoints = open(self.checkpoints_path, "a", encoding="utf-8")  # noqa: SIM115
        self._note("initialize", shard.sequence_number)
        log.info("processing %s from %s", self._where, shard.sequence_number)

    def process_records(self, batch: ProcessRecords, checkpointer: Checkpointer) -> None:
        ledger = self._ledger
        assert ledger is not None
        now = time.time()
        for record in batch.records:
            ledger.write(json.dumps({
                "stream": self.stream_name,
                "shard": self.shard_id,
                "sequence_number": record.sequence_number,
                "sub_sequence_number": record.sub_sequence_number,
                "partition_key": record.partition_key,
                "data": base64.b64encode(record.data).decode("ascii"),
                "arrival_ms": record.approximate_arrival_timestamp_ms,
                "processed_at": now,
            }) + "\n")
        ledger.flush()
        os.fsync(ledger.fileno())
        if batch.records:
            last = batch.records[-1]
            self._last_sequence = last.sequence_number
            if self._checkpoint(checkpointer, last):
                self._note("checkpoint", last.sequence_number)
            log.info("%s: %d records, checkpoint %s, %s ms behind", self._where,
                     len(batch.records), batch.records[-1].sequence_number, batch.millis_behind_latest)

    @property
    def _where(self) -> str:
        """The shard, in the log: ``stream/shard`` when the daemon named the stream."""
        return f"{self.stream_name}/{self.shard_id}" if self.stream_name else self.shard_id

    def _checkpoint(self, checkpointer: Checkpointer, record: Record | None = None) -> bool:
        """Checkpoint (throttling retried); a lease lost meanwhile is not an error.

        The KCL refuses the checkpoint with ShutdownException when this worker
        no longer holds the lease (an outage longer than failoverTimeMillis, a
        lease stolen): the new owner resumes from the last checkpoint, so the
        records after it are processed again there. Nothing is lost.
        """
        try:
            checkpointer.checkpoint(record, retry=RETRY)
        except ShutdownError:
            log.warning("%s: lease lost before the checkpoint; the next owner resumes from the last one",
                        self._where)
            return False
        return True

    def lease_lost(self) -> None:
        log.info("%s: lease lost", self._where)

    def shard_ended(self, checkpointer: Checkpointer) -> None:
        log.info("%s: shard ended", self._where)
        # Lost meanwhile, the lease's new owner reaches the shard end and checkpoints it.
        if self._checkpoint(checkpointer):
            self._note("checkpoint", "SHARD_END")

    def shutdown_requested(self, checkpointer: Checkpointer) -> None:
        log.info("%s: shutdown requested", self._where)
        if self._checkpoint(checkpointer):
            # At the last record delivered, which is the last one seen here.
            self._note("checkpoint", self._last_sequence)


if __name__ == "__main__":
    run(RecorderProcessor())
