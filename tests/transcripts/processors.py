"""Processors that the protocol transcripts drive (loaded by file path)."""

from __future__ import annotations

import sys

from amazon_kclpy import kcl
from amazon_kclpy.v2 import processor as v2
from amazon_kclpy.v3 import processor as v3

from kclpy_local import (
    Checkpointer,
    CheckpointError,
    Initialize,
    ProcessRecords,
    RecordProcessor,
    RetryPolicy,
    run,
)

NO_WAIT = RetryPolicy(attempts=3, sleep=lambda _s: None)


class Checkpointing(RecordProcessor):
    """Checkpoints at the last record of each batch, and at shard end and shutdown.

    A refused checkpoint is logged to stderr as ``checkpoint refused: <class>``.
    """

    def initialize(self, shard: Initialize) -> None:
        stream = f" of stream {shard.stream_name}" if shard.stream_name else ""
        print(f"initialized {shard.shard_id}{stream}")

    def process_records(self, batch: ProcessRecords, checkpointer: Checkpointer) -> None:
        for record in batch.records:
            print(f"record {record.partition_key} {record.data!r}")
        if batch.records:
            self._checkpoint(checkpointer, batch.records[-1])

    def lease_lost(self) -> None:
        print("lease lost")

    def shard_ended(self, checkpointer: Checkpointer) -> None:
        print("shard ended")
        self._checkpoint(checkpointer, None)

    def shutdown_requested(self, checkpointer: Checkpointer) -> None:
        print("shutdown requested")
        self._checkpoint(checkpointer, None)

    def _checkpoint(self, checkpointer: Checkpointer, record: object) -> None:
        try:
            checkpointer.checkpoint(record, retry=NO_WAIT)  # type: ignore[arg-type]
            print(f"checkpointed at {getattr(record, 'sequence_number', 'the last record')}")
        except CheckpointError as exc:
            print(f"checkpoint refused: {type(exc).__name__} {exc.value}", file=sys.stderr)


class CheckpointBySequence(Checkpointing):
    """Checkpoints with explicit (sequence number, sub-sequence number)."""

    def process_records(self, batch: ProcessRecords, checkpointer: Checkpointer) -> None:
        last = batch.records[-1]
        checkpointer.checkpoint(last.sequence_number, last.sub_sequence_number)


class Raising(Checkpointing):
    """Raises while processing records."""

    def process_records(self, batch: ProcessRecords, checkpointer: Checkpointer) -> None:
        raise RuntimeError("boom in process_records")


class LeaseLostCheckpointing(Checkpointing):
    """Tries to checkpoint after losing its lease (must be refused locally)."""

    def lease_lost(self) -> None:
        pass


class KclpyV1(kcl.RecordProcessorBase):
    """amazon-kclpy interface v1, as its sample app writes it."""

    def initialize(self, shard_id):  # type: ignore[no-untyped-def]
        print(f"v1 initialize {shard_id}")

    def process_records(self, records, checkpointer):  # type: ignore[no-untyped-def]
        for r in records:
            print(f"v1 record {r.get('partitionKey')} {r.binary_data!r} {r.sequence_number}")
        checkpointer.checkpoint(records[-1].sequence_number)

    def shutdown(self, checkpointer, reason):  # type: ignore[no-untyped-def]
        print(f"v1 shutdown {reason}")
        if reason == "TERMINATE":
            checkpointer.checkpoint()

    def shutdown_requested(self, checkpointer):  # type: ignore[no-untyped-def]
        print("v1 shutdown requested")
        checkpointer.checkpoint()


class KclpyV2(v2.RecordProcessorBase):
    def initialize(self, initialize_input):  # type: ignore[no-untyped-def]
        print(f"v2 initialize {initialize_input.shard_id}")

    def process_records(self, process_records_input):  # type: ignore[no-untyped-def]
        records = process_records_input.records
        for r in records:
            print(f"v2 record {r.partition_key} {r.binary_data!r} {r.sequence_number}")
        process_records_input.checkpointer.checkpoint(records[-1].sequence_number)

    def shutdown(self, shutdown_input):  # type: ignore[no-untyped-def]
        print(f"v2 shutdown {shutdown_input.reason}")
        if shutdown_input.reason == "TERMINATE":
            shutdown_input.checkpointer.checkpoint()

    def shutdown_requested(self, shutdown_requested_input):  # type: ignore[no-untyped-def]
        print(f"v2 shutdown requested {type(shutdown_requested_input).__name__}")
        shutdown_requested_input.checkpointer.checkpoint()


class KclpyV3(v3.RecordProcessorBase):
    def initialize(self, initialize_input):  # type: ignore[no-untyped-def]
        print(f"v3 initialize {initialize_input.shard_id}")

    def process_records(self, process_records_input):  # type: ignore[no-untyped-def]
        records = process_records_input.records
        for r in records:
            print(f"v3 record {r.partition_key} {r.approximate_arrival_timestamp}")
        process_records_input.checkpointer.checkpoint(records[-1].sequence_number)

    def lease_lost(self, lease_lost_input):  # type: ignore[no-untyped-def]
        print(f"v3 lease lost {type(lease_lost_input).__name__}")

    def shard_ended(self, shard_ended_input):  # type: ignore[no-untyped-def]
        print(f"v3 shard ended {type(shard_ended_input).__name__}")
        shard_ended_input.checkpointer.checkpoint()

    def shutdown_requested(self, shutdown_requested_input):  # type: ignore[no-untyped-def]
        print(f"v3 shutdown requested {type(shutdown_requested_input).__name__}")
        shutdown_requested_input.checkpointer.checkpoint()


if __name__ == "__main__":
    run(globals()[sys.argv[1]]())
