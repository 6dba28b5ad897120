"""``KCLProcess``: a drop-in for ``amazon_kclpy.kcl.KCLProcess``.

Switch a processor written for amazon-kclpy by changing one import::

    from kclpy_local import KCLProcess   # was: from amazon_kclpy.kcl import KCLProcess

    KCLProcess(MyProcessor()).run()
"""

from __future__ import annotations

import sys
from typing import TextIO

from .._exceptions import ProcessorFailed, UsageError
from .loop import OnError, Runtime, _stdin, claim_stdout, configure_logging

__all__ = ["KCLProcess"]


class KCLProcess:
    """Same constructor and ``run()`` as amazon-kclpy's, with kclpy-local's runtime.

    Differences, all deliberate: a processor exception is not acknowledged (the
    process exits with status 4 unless ``on_error="continue"``); bad input
    raises :class:`~kclpy_local.ProtocolError` (an ``amazon_kclpy.dispatch.MalformedAction``);
    the 1.x ``shutdown`` message works; when writing to the real stdout, the
    process keeps it for the protocol and sends anything else printed to stderr.
    """

    def __init__(
        self,
        record_processor: object,
        input_file: TextIO | None = None,
        output_file: TextIO | None = None,
        error_file: TextIO | None = None,
        *,
        on_error: OnError | None = None,
        strict: bool | None = None,
    ) -> None:
        self.processor = record_processor
        self._input = input_file
        self._output = output_file
        self._error = error_file
        self._on_error = on_error
        self._strict = strict

    def run(self) -> None:
        """Handle the daemon's messages until end of input."""
        output = self._output
        error = self._error if self._error is not None else sys.stderr
        try:
            if output is None or output is sys.__stdout__:
                configure_logging()
                output = claim_stdout()
            runtime = Runtime(
                self.processor,
                self._input if self._input is not None else _stdin(),
                output,
                error,
                on_error=self._on_error,
                strict=self._strict,
            )
        except UsageError as exc:  # a bad KCLPY_LOCAL_* setting: as kclpy_local.run says it
            error.write(f"kclpy-local: error: {exc}\n")
            error.flush()
            raise SystemExit(exc.exit_code) from None
        try:
            runtime.run()
        except ProcessorFailed as exc:
            raise SystemExit(exc.exit_code) from None
