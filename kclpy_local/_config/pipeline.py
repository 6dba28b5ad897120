"""The one properties pipeline: load, substitute, override, translate, validate.

:func:`prepare` is what ``kclpy-local run``, ``kclpy-local daemon`` (the
:class:`~kclpy_local._jvm.daemon.Daemon` preflight, so the test fixtures too) and
``kclpy-local properties check`` do with a file before anything runs it:

1. read the file (:func:`~kclpy_local._config.properties.read_properties`);
2. apply ``overrides`` (taken literally) over its entries (``None`` removes one);
3. substitute ``${VAR}`` / ``${VAR:-default}`` from ``environ``;
4. translate the values for the generation (:meth:`Generation.translate
   <kclpy_local._config.generations.Generation.translate>`: none for 1.x, the
   1.x-to-3.x translation for 3.x), one note per change;
5. on local endpoints, add the generation's start-up keys the file leaves unset
   (:mod:`~kclpy_local._config.startup`), one note per key;
6. validate what the generation would run, with the lines of the file.

A variable that is not set is a problem the validator reports, except where the
values must be complete: before a translation, and with ``validate=False``, it
is a :class:`~kclpy_local._exceptions.PropertiesError` at once.

The result, a :class:`Prepared`, holds the effective values, the effective file
(comments and layout kept) to hand to the daemon, the translation and its notes,
and the problems (none with ``validate=False``).

:func:`effective_values` is steps 1 to 3 alone, for a command that needs a few
keys of a file (the stream, the endpoint) before it decides what to run: the
same overrides and the same substitution, never the raw text.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import javaproperties

from .._exceptions import PropertiesError
from .document import Entry, Problem, Profile, PropertiesDocument
from .generations import Generation
from .generations import generation as _generation
from .properties import (
    detect_profile,
    expand,
    load_properties_file,
    missing_message,
    read_properties,
    validate_properties,
)
from .startup import local_startup
from .translate import AnswersCbor, Translation, apply_translation, note_lines

__all__ = ["Overrides", "Prepared", "effective_values", "prepare"]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A properties file made ready for one generation (see :func:`prepare`).

    ``source``: the file as written; ``checked``: the document that was validated
    (entries as the generation runs them, with the file's lines); ``values``: the
    effective key/value pairs; ``effective``: the same as a file that keeps the
    source's comments and layout; ``problems``: errors and warnings, in file order
    (empty when not validated).
    """

    path: Path
    generation: Generation
    profile: Profile | None
    source: PropertiesDocument
    checked: PropertiesDocument
    values: dict[str, str]
    effective: javaproperties.PropertiesFile
    translation: Translation
    problems: tuple[Problem, ...] = ()
    startup: tuple[str, ...] = ()

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def notes(self) -> list[str]:
        """One line per change of the translation (``kclpy-local: translated for ...``)
        and per start-up key added on local endpoints (``kclpy-local: local endpoints: ...``)."""
        return note_lines(self.translation) + [
            f"kclpy-local: local endpoints: {note}" for note in self.startup
        ]

    @property
    def changed(self) -> bool:
        """Whether the daemon must be given a copy: the effective values differ from the file's."""
        # The start-up keys are added to ``values``: no separate test for them.
        return self.translation.changed or self.values != self.source.as_dict()

    def refuse(self, what: str) -> None:
        """Raise :class:`PropertiesError` listing every error (``"{path}: {what}:"``), if any."""
        errors = self.errors
        if not errors:
            return
        listing = "\n".join("  " + p.render(self.path) for p in errors)
        exc = PropertiesError(f"{self.path}: {what}:\n{listing}")
        exc.hint = f"run: kclpy-local properties check {self.path}{self.generation.check_option}"
        raise exc


#: The overrides of a command: a key's new value, or ``None`` to remove the key.
Overrides = Mapping[str, str | None]


def _overridden(source: PropertiesDocument, overrides: Overrides | None) -> PropertiesDocument:
    """``source`` with ``overrides`` in place of its entries (new keys at the end; a
    key overridden with ``None`` removed)."""
    given = dict(overrides or {})
    entries = []
    for e in source.entries:
        if e.key not in given:
            entries.append(e)
        elif (value := given[e.key]) is not None:
            # An override is literal: a "${" in it stays one.
            entries.append(Entry(e.key, value.replace("${", "$${"), e.line))
    present = {e.key for e in source.entries}
    entries += [
        Entry(k, v.replace("${", "$${"))
        for k, v in given.items()
        if k not in present and v is not None
    ]
    return dataclasses.replace(source, entries=tuple(entries))


def _substituted(
    document: PropertiesDocument, environ: Mapping[str, str], *, strict: bool
) -> dict[str, str]:
    """The values of ``document`` substituted from ``environ``; a value naming a
    variable that is not set stays as written, or (``strict``) is a PropertiesError."""
    values: dict[str, str] = {}
    for entry in document.entries:
        text, missing = expand(entry.value, environ)
        if missing and strict:
            raise PropertiesError(missing_message(entry.key, missing[0]))
        values[entry.key] = entry.value if missing else text
    return values


def effective_values(
    path: str | os.PathLike[str],
    *,
    overrides: Overrides | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The values of the file at ``path`` with ``overrides`` (literal; ``None`` removes a key) and
    ``${VAR}`` / ``${VAR:-default}`` substituted from ``environ`` (default:
    ``os.environ``), untranslated and unvalidated.

    A value naming a variable that is not set stays as written (:func:`prepare`
    with validation reports it). :class:`PropertiesError` when the file cannot be read.
    """
    env = os.environ if environ is None else environ
    return _substituted(_overridden(read_properties(path), overrides), env, strict=False)


def prepare(
    path: str | os.PathLike[str],
    *,
    generation: int | Generation = 1,
    overrides: Overrides | None = None,
    environ: Mapping[str, str] | None = None,
    profile: Profile | None = None,
    translate: bool = True,
    validate: bool = True,
    answers_cbor: AnswersCbor | None = None,
) -> Prepared:
    """Load, override, substitute, translate (unless ``translate`` is false) and
    validate (unless ``validate`` is false) the file at ``path`` for ``generation``.

    ``profile`` defaults to the file's (its comment or name). ``answers_cbor`` says
    whether a CloudWatch endpoint answers the Smithy RPC v2 CBOR protocol, for the
    translation's rule on the ``local`` profile's metrics (without it, none is
    taken to: metrics off). :class:`PropertiesError`
    when the file cannot be read, and (translating, or ``validate=False``) when a
    variable is not set; ``ValueError`` for an unknown generation.
    """
    kcl = _generation(generation)
    env = os.environ if environ is None else environ
    source = read_properties(path)
    if profile is None:
        profile = detect_profile(source)
    written = _overridden(source, overrides)

    translating = translate and kcl.translates
    # A translation reads substituted values: a variable that is not set stops it
    # (as it stops an unvalidated file); the validator reports it otherwise.
    substituted = _substituted(written, env, strict=translating or not validate)
    translation = (
        kcl.translate(substituted, profile, answers_cbor)
        if translating
        else Translation(substituted)
    )
    checked = written
    if translating:
        # What the generation runs, with the file's lines (already substituted: a
        # literal "${" must stay one).
        entries = [
            Entry(k, v.replace("${", "$${"), written.line_of(k))
            for k, v in translation.values.items()
        ]
        checked = dataclasses.replace(source, entries=tuple(entries))
    problems = (
        validate_properties(checked, profile=profile, environ=env, generation=kcl)
        if validate
        else []
    )

    values, startup = local_startup(kcl.startup, translation.values, kcl.endpoint_values)
    effective = load_properties_file(path)
    for key, value in substituted.items():
        if effective.get(key) != value:
            effective[key] = value
    apply_translation(effective, Translation(values))
    return Prepared(
        path=Path(path),
        generation=kcl,
        profile=profile,
        source=source,
        checked=checked,
        values=values,
        effective=effective,
        translation=translation,
        problems=tuple(problems),
        startup=startup,
    )
