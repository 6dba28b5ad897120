"""The processor process: what runs inside ``python processor.py`` under the daemon.

The record processor interface (:mod:`.processor`), the checkpointer and its
retries (:mod:`.checkpointer`, :mod:`.retry`), the main loop that owns stdout
and applies the failure policy (:mod:`.loop`), the adapter that runs
amazon-kclpy processors unchanged (:mod:`.compat`, :mod:`.kclprocess`) and the
progress events a processor writes for ``kclpy-local run`` (:mod:`.progress`).
It stands on :mod:`kclpy_local._protocol` only: a processor starts fast and
imports no boto3, emulator or tooling (the layers contract forbids it).
"""
