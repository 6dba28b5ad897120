"""A processor written against amazon-kclpy, run unchanged on kclpy-local.

The class is plain amazon-kclpy (interface v1, as in amazon-kclpy's sample
app); only the import of KCLProcess differs. It appends what it processes to
the ledger named by ``KCLPY_LOCAL_LEDGER`` (same format as recorder.py), and
its shutdown handles the KCL 1.x ``shutdown`` message that amazon-kclpy's own
KCLProcess cannot.
"""

from __future__ import annotations

import json
import os
import sys
import time

from amazon_kclpy import kcl

from kclpy_local import KCLProcess  # was: from amazon_kclpy.kcl import KCLProcess


class RecordProcessor(kcl.RecordProcessorBase):
    def __init__(self):
        self.shard_id = None
        self.largest_seq = None
        self.ledger = open(os.environ.get("KCLPY_LOCAL_LEDGER", "ledger.jsonl"), "a")  # noqa: SIM115

    def initialize(self, shard_id):
        self.shard_id = shard_id

    def process_records(self, records, checkpointer):
        for record in records:
            self.ledger.write(json.dumps({
                "shard": self.shard_id,
                "sequence_number": record.get("sequenceNumber"),
                "sub_sequence_number": record.get("subSequenceNumber"),
                "partition_key": record.get("partitionKey"),
                "data": record.get("data"),
                "processed_at": time.time(),
            }) + "\n")
            self.largest_seq = record.sequence_number
        self.ledger.flush()
        os.fsync(self.ledger.fileno())
        try:
            checkpointer.checkpoint(self.largest_seq)
        except kcl.CheckpointError as e:
            sys.stderr.write(f"checkpoint failed: {e.value}\n")

    def shutdown(self, checkpointer, reason):
        sys.stderr.write(f"shutdown: {reason}\n")
        if reason == "TERMINATE":
            checkpointer.checkpoint()

    def shutdown_requested(self, checkpointer):
        checkpointer.checkpoint()


if __name__ == "__main__":
    KCLProcess(RecordProcessor()).run()
