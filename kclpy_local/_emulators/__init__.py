"""Local AWS engines: moto (embedded), kinesis-mock, LocalStack, and the registry.

One module per engine, each a managed process on loopback
(:mod:`.moto`, :mod:`.kinesis_mock`, :mod:`.localstack`), and the registry
of engines that ``kclpy-local up`` started (:mod:`.registry`), which every
command reads to find a running engine.
"""
