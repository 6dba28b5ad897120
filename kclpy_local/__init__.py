"""kclpy-local: Python record processors for the KCL MultiLangDaemon, run locally."""

from ._exceptions import KclpyLocalError as KclpyLocalError
from ._version import __version__ as __version__

__all__ = ["KclpyLocalError", "__version__"]
