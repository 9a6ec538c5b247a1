"""An import-linter contract of our own: the apps meet only through each other's public face.

design.md §2: each app imports, of the apps below it, only their public face: the modules named
in `face` (services, selectors, choices, ...), at any depth: `transcripts.records.services` is the
face of the records part of transcripts; `signing.services.runner` is private to signing.
Everything else in an app (views, admin, tasks, its rules, its document code, its helpers) is
private to it. The layers contract in pyproject.toml says which way imports may go; this one says
through which door. Registered in [tool.importlinter] contract_types; run by `make lint`.
"""

from __future__ import annotations

import grimp
from importlinter import Contract, ContractCheck, fields, output


class PublicFaceContract(Contract):
    """Imports between two of `apps` must land on a module of the imported app's face."""

    type_name = "public_face"

    apps = fields.ListField(subfield=fields.StringField())
    face = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        apps: list[str] = list(self.apps)  # type: ignore[call-overload]
        face: set[str] = set(self.face)  # type: ignore[call-overload]
        illegal: list[dict[str, object]] = []
        for app in apps:
            for imported in sorted({app, *graph.find_descendants(app)}):
                if _in_face(app, imported, face):
                    continue
                for importer in sorted(graph.find_modules_that_directly_import(imported)):
                    if importer.split(".", 1)[0] in apps and importer.split(".", 1)[0] != app:
                        details = graph.get_import_details(importer=importer, imported=imported)
                        lines = sorted({d["line_number"] for d in details})
                        illegal.append({"importer": importer, "imported": imported, "lines": lines})
        return ContractCheck(kept=not illegal, metadata={"illegal": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        output.print_error(
            "Another app's private module imported (design.md §2, the public face):", bold=False
        )
        output.new_line()
        for link in check.metadata["illegal"]:
            lines = ", ".join(map(str, link["lines"]))
            output.print_error(f"- {link['importer']} -> {link['imported']} (l.{lines})", bold=False)
        output.new_line()


def _in_face(app: str, module: str, face: set[str]) -> bool:
    """The app's package itself, and any of its modules named for the face: `transcripts.services`,
    `transcripts.records.services` (the face of the records part), but not `signing.services.runner`."""
    return module == app or module.rsplit(".", 1)[-1] in face
