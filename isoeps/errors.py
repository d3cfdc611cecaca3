"""User-facing error types.

Errors that derive from :class:`IsoepsError` are the fault of an input (a config value, a
file, a flag). The CLI prints them as one line naming the culprit and exits with code 2,
never with a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any


class IsoepsError(Exception):
    """Base class for errors caused by bad input rather than by a bug."""


class ConfigError(IsoepsError, ValueError):
    """A suite, method config or CLI value is invalid. The message names the field."""

    @classmethod
    def from_validation(
        cls, exc: Any, model: Any, *, field: str = "", owner: str = ""
    ) -> ConfigError:
        """The error for a pydantic ``ValidationError`` of ``model``, naming each field as
        ``<field>.<name>`` (see :func:`validation_problems`).

        Args:
            exc: the ``ValidationError``.
            model: the pydantic model (or dataclass) that raised it.
            field: the config path of ``model``, prefixed to each field; empty for none.
            owner: whose fields an unknown field is not among (e.g. ``"the ray executor"``).

        Returns:
            The error, one problem per ``"; "``-separated part.
        """
        return cls("; ".join(validation_problems(exc, model, field=field, owner=owner)))


class DataError(IsoepsError, ValueError):
    """A dataset file, folder or field is missing or malformed. The message names it."""


class MissingWeightsError(IsoepsError, FileNotFoundError):
    """Model weights that must be local were not found. The message lists where we looked."""


class PrivacyError(IsoepsError, RuntimeError):
    """A privacy rule would be broken (e.g. a cell whose epsilon exceeds its target)."""


class UnknownNameError(ConfigError, KeyError):
    """A registry lookup failed. The message lists the known names."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


def validation_problems(exc: Any, model: Any, *, field: str = "", owner: str = "") -> list[str]:
    """One line per error of a pydantic ``ValidationError`` raised by ``model``, each naming its
    field as ``<field>.<loc>``: ``metrics.fid.batch_sise: unknown field; known fields: ...``.

    ``owner`` (e.g. ``"the ray executor"``) says whose fields an unknown one is not among. The
    shared wording of every strict config: suites, method configs, metric and executor options.

    Args:
        exc: the ``ValidationError``.
        model: the pydantic model (or dataclass) that raised it.
        field: the config path of ``model``, prefixed to each location; empty for none.
        owner: see above; empty for none.

    Returns:
        The lines, one per error.
    """
    problems = []
    for error in exc.errors():
        path = ".".join(str(part) for part in (field, *error["loc"]) if part != "")
        if error["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            known = known_fields(model, tuple(error["loc"][:-1]))
            whose = f" of {owner}" if owner else ""
            hint = f"; known fields: {', '.join(known) or '(none)'}" if known is not None else ""
            problems.append(f"{path}: unknown field{whose}{hint}")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            text = f"{message} (got {error.get('input')!r})"
            problems.append(f"{path}: {text}" if path else text)
    return problems


def known_fields(model: Any, loc: tuple[Any, ...] = ()) -> list[str] | None:
    """Field names of the pydantic model or dataclass at ``loc`` under ``model`` (walking
    dict-valued fields by key); None when ``loc`` leads to no model.

    Args:
        model: the outer pydantic model or dataclass.
        loc: the path of field names (a dict-valued field is followed by its key).

    Returns:
        The field names, or None.
    """
    current, skip_key = model, False
    for part in loc:
        if skip_key:
            skip_key = False
            continue
        fields = _pydantic_fields(current)
        if fields is None or part not in fields:
            return None
        annotation = fields[part].annotation
        args = getattr(annotation, "__args__", ())
        if getattr(annotation, "__origin__", None) is dict and args:
            current, skip_key = args[1], True
        elif _pydantic_fields(annotation) is not None:
            current = annotation
        else:
            candidates = [a for a in args if _pydantic_fields(a) is not None]
            if not candidates:
                return None
            current = candidates[0]
    fields = _pydantic_fields(current)
    return None if fields is None else list(fields)


def _pydantic_fields(model: Any) -> dict[str, Any] | None:
    """``model_fields`` of a pydantic model, or the fields of a pydantic dataclass."""
    if not isinstance(model, type):
        return None
    fields = getattr(model, "__pydantic_fields__", None)
    return fields if isinstance(fields, dict) else None
