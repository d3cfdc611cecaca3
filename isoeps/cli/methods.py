"""``isoeps methods list``: each registered method, its description, config fields and modes."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("methods", help="list the registered methods")
    actions = parser.add_subparsers(dest="methods_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", parents=[parent], help="list methods and their configs")
    listing.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="a module that registers plugins",
    )
    listing.set_defaults(handler=_list)


def describe_method(name: str) -> dict:
    from isoeps import registry

    try:
        cls = registry.get("isoeps.methods", name)
    except Exception as exc:  # noqa: BLE001 (a broken plugin is listed with its error, not fatal)
        return {"name": name, "error": f"{type(exc).__name__}: {exc}"}
    fields = []
    for field_name, field in cls.Config.model_fields.items():
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        if hasattr(default, "model_dump"):
            default = default.model_dump(mode="json")
        annotation = field.annotation
        type_name = (
            annotation.__name__
            if isinstance(annotation, type)
            else str(annotation).replace("typing.", "")
        )
        fields.append(
            {
                "name": field_name,
                "type": type_name,
                "default": default,
                "description": field.description or "",
                "part": cls.Config.part_of(field_name) or "public",
            }
        )
    return {
        "name": name,
        "description": cls.description or (cls.__doc__ or "").strip().split("\n")[0],
        "version": str(cls.version),
        "modes": list(cls.supported_budgets),
        "config": fields,
    }


def _list(args: argparse.Namespace) -> int:
    from isoeps import registry
    from isoeps.cli._common import emit

    registry.import_modules(args.imports)
    methods = [describe_method(name) for name in registry.names("isoeps.methods")]
    lines = []
    for method in methods:
        if "error" in method:
            lines.append(f"{method['name']}: cannot load ({method['error']})")
            continue
        lines.append(
            f"{method['name']} (v{method['version']}; modes: "
            f"{', '.join(method['modes'])}): {method['description']}"
        )
        for field in method["config"]:
            lines.append(
                f"    [{field['part']}] {field['name']}: {field['type']} = {field['default']!r}"
                + (f"  # {field['description']}" if field["description"] else "")
            )
    emit(args, {"methods": methods}, "\n".join(lines) or "(no methods registered)")
    return 0
