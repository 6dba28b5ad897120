"""kclpy-local: Python record processors for the KCL MultiLangDaemon, run locally.

A processor::

    from kclpy_local import RecordProcessor, run

    class Printer(RecordProcessor):
        def process_records(self, batch, checkpointer):
            for record in batch.records:
                print(record.partition_key, record.data)   # goes to stderr
            checkpointer.checkpoint()

        def lease_lost(self):
            pass

        def shard_ended(self, checkpointer):
            checkpointer.checkpoint()

        def shutdown_requested(self, checkpointer):
            checkpointer.checkpoint()

    if __name__ == "__main__":
        run(Printer())
"""

from ._exceptions import ArtifactDownloadError as ArtifactDownloadError
from ._exceptions import ArtifactIntegrityError as ArtifactIntegrityError
from ._exceptions import BootstrapError as BootstrapError
from ._exceptions import CheckpointError as CheckpointError
from ._exceptions import DaemonError as DaemonError
from ._exceptions import DaemonStartError as DaemonStartError
from ._exceptions import DependencyError as DependencyError
from ._exceptions import EmulatorError as EmulatorError
from ._exceptions import InputError as InputError
from ._exceptions import InvalidSequenceNumberError as InvalidSequenceNumberError
from ._exceptions import InvalidStateError as InvalidStateError
from ._exceptions import JavaNotFoundError as JavaNotFoundError
from ._exceptions import KclpyLocalError as KclpyLocalError
from ._exceptions import PortInUseError as PortInUseError
from ._exceptions import ProcessorFailed as ProcessorFailed
from ._exceptions import PropertiesError as PropertiesError
from ._exceptions import ProtocolError as ProtocolError
from ._exceptions import PutRecordsError as PutRecordsError
from ._exceptions import ShutdownError as ShutdownError
from ._exceptions import ThrottlingError as ThrottlingError
from ._exceptions import UnknownCheckpointError as UnknownCheckpointError
from ._exceptions import UsageError as UsageError
from ._protocol.codec import decode_child_line as decode_child_line
from ._protocol.codec import decode_daemon_line as decode_daemon_line
from ._protocol.codec import encode as encode
from ._protocol.messages import CheckpointReply as CheckpointReply
from ._protocol.messages import CheckpointRequest as CheckpointRequest
from ._protocol.messages import Initialize as Initialize
from ._protocol.messages import LeaseLost as LeaseLost
from ._protocol.messages import ProcessRecords as ProcessRecords
from ._protocol.messages import Record as Record
from ._protocol.messages import ShardEnded as ShardEnded
from ._protocol.messages import Shutdown as Shutdown
from ._protocol.messages import ShutdownRequested as ShutdownRequested
from ._protocol.messages import Status as Status
from ._runtime.checkpointer import Checkpointer as Checkpointer
from ._runtime.kclprocess import KCLProcess as KCLProcess
from ._runtime.loop import run as run
from ._runtime.processor import RecordProcessor as RecordProcessor
from ._runtime.retry import RetryPolicy as RetryPolicy
from ._version import __version__ as __version__

__all__ = [
    "ArtifactDownloadError",
    "ArtifactIntegrityError",
    "BootstrapError",
    "CheckpointError",
    "CheckpointReply",
    "CheckpointRequest",
    "Checkpointer",
    "DaemonError",
    "DaemonStartError",
    "DependencyError",
    "EmulatorError",
    "Initialize",
    "InputError",
    "InvalidSequenceNumberError",
    "InvalidStateError",
    "JavaNotFoundError",
    "KCLProcess",
    "KclpyLocalError",
    "LeaseLost",
    "PortInUseError",
    "ProcessRecords",
    "ProcessorFailed",
    "PropertiesError",
    "ProtocolError",
    "PutRecordsError",
    "Record",
    "RecordProcessor",
    "RetryPolicy",
    "ShardEnded",
    "Shutdown",
    "ShutdownError",
    "ShutdownRequested",
    "Status",
    "ThrottlingError",
    "UnknownCheckpointError",
    "UsageError",
    "__version__",
    "decode_child_line",
    "decode_daemon_line",
    "encode",
    "run",
]
