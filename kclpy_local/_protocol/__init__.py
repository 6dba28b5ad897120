"""The multilang wire protocol: messages, their JSON Schemas, the codec and the pipe.

The bottom layer: typed, frozen messages (:mod:`.messages`), the JSON Schema
documents that define the wire format (package data in ``wire/``, loaded by
:mod:`.schemas`), the line codec with its fast checks (:mod:`.codec`), and the
processor's end of the pipe (:mod:`.channel`). It imports nothing of the
package but :mod:`kclpy_local._exceptions`, and no AWS SDK.
"""
