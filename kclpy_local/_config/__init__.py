"""Daemon configuration: ``.properties`` files, the key tables, and the KCL generations.

Parsing and byte-exact editing (:mod:`.properties`, :mod:`.document`), one
object per KCL generation carrying its key table, decoders, rules and
translation (:mod:`.generations`, with the tables in :mod:`.kcl1_keys` /
:mod:`.kcl3_keys`, the rules in :mod:`.kcl1_rules` / :mod:`.kcl3_rules`, the
shared pieces in :mod:`.keyspec` and :mod:`.entry_rules`), the 1.x-to-3.x translation
(:mod:`.translate`), the built-in profiles (package data in ``profiles/``),
and the one pipeline every caller prepares a file with (:mod:`.pipeline`).
Pure data and rules: no processes, no network.
"""
