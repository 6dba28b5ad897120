"""Example processor: stores each order (a JSON object with an ``id``) as a file.

Each record's data is one order; it is written to ``$ORDERS_DIR/<id>.json``
(default ``orders/``) through a temporary file and a rename, so a file is
either complete or absent. The batch is checkpointed after its orders are
stored; a record that is not an order with an ``id`` is logged and skipped.

Run it with ``kclpy-local run processors/orders.py --stream orders``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from kclpy_local import Checkpointer, ProcessRecords, RecordProcessor, RetryPolicy, run

log = logging.getLogger("orders")


class OrderProcessor(RecordProcessor):
    def __init__(self, directory: str | None = None) -> None:
        self.directory = Path(directory or os.environ.get("ORDERS_DIR", "orders"))

    def process_records(self, batch: ProcessRecords, checkpointer: Checkpointer) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for record in batch.records:
            try:
                order = json.loads(record.data)
                name = f"{int(order['id'])}.json"
            except (ValueError, TypeError, KeyError):
                log.warning("skipping record %s: not an order with an id", record.sequence_number)
                continue
            tmp = self.directory / f".{name}.tmp"
            tmp.write_bytes(record.data)
            tmp.replace(self.directory / name)
        if batch.records:
            checkpointer.checkpoint(batch.records[-1], retry=RetryPolicy())

    def lease_lost(self) -> None:
        pass

    def shard_ended(self, checkpointer: Checkpointer) -> None:
        checkpointer.checkpoint(retry=RetryPolicy())

    def shutdown_requested(self, checkpointer: Checkpointer) -> None:
        checkpointer.checkpoint(retry=RetryPolicy())


if __name__ == "__main__":
    run(OrderProcessor())
