"""The JVM side: Java, the pinned jars, the launcher, and the KCL daemon process.

Finding Java (:mod:`.discovery`), the jar lockfiles (package data in
``locks/``, read by :mod:`.jars`), the per-user cache (:mod:`.cache`),
downloads (:mod:`.fetch`), installation (:mod:`.bootstrap`), building the
launchers from their Java sources (package data in ``launchers/``, built by
:mod:`.launcher`), running the daemon (:mod:`.daemon`), supervising it
(:mod:`.supervise`) and the guard against mixing KCL generations on one lease
table (:mod:`.guard`).
"""
