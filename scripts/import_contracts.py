"""An import-linter contract type the built-in ones lack: no private names across modules.

`from splatfilm.a import _helper` in module b couples b to a's internals; a helper two modules
share deserves a public name (or a home of its own). The contract reads each module's source
(import-linter's graph keeps modules, not the names imported) and lists every such import.
"""

from __future__ import annotations

import ast
import importlib.util

from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def private_imports(module: str, source: str, root: str, is_package: bool = False) -> list[tuple[int, str, str]]:
    """(line, imported module, private name) for each private name `module` imports from another
    module of `root`. Dunder names (__version__) are public by convention."""
    found = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom):
            continue
        target = node.module or ""
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        if target != root and not target.startswith(root + "."):
            continue
        for alias in node.names:
            name = alias.name
            if name.startswith("_") and not (name.startswith("__") and name.endswith("__")) and target != module:
                found.append((node.lineno, target, name))
    return found


class NoPrivateNamesContract(Contract):
    """Modules of `containers` never import a private (leading underscore) name from another module."""

    type_name = "no_private_names"

    containers = fields.ListField(subfield=fields.StringField())

    def check(self, graph, verbose: bool) -> ContractCheck:
        violations = []
        for container in self.containers:  # type: ignore[attr-defined]
            for module in sorted(m for m in graph.modules if m == container or m.startswith(container + ".")):
                spec = importlib.util.find_spec(module)
                if spec is None or not spec.origin or not spec.origin.endswith(".py"):
                    continue
                with open(spec.origin, encoding="utf-8") as f:
                    source = f.read()
                is_package = spec.submodule_search_locations is not None
                for line, target, name in private_imports(module, source, container, is_package):
                    violations.append(f"{module}:{line} imports {target}.{name}")
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for v in check.metadata["violations"]:
            output.print_error(v, bold=False)
            output.new_line()
