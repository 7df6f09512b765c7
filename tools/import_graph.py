"""The package's imports, module to module, and the layer each module belongs to: the drawing in
tools/imports.mmd (Mermaid) and the rules tests/test_layers.py checks.

    python tools/import_graph.py            # rewrites tools/imports.mmd
    python tools/import_graph.py --check    # exit 1 when tools/imports.mmd is out of date

Every import counts, at the top of a module or inside a function: a lazy import is still a dependency. Layers,
bottom up; a module imports only from its own layer or those below it.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "lightning_review"
DRAWING = ROOT / "tools" / "imports.mmd"

# Bottom up. Training sits above generation and evaluate: its validation reviews decode with the model
# (generation.decoding) and score with the offline judge (evaluate.embedding_judge).
LAYERS = ("artifacts", "data", "model", "generation", "evaluate", "training", "commands")
# module (or package prefix) -> layer; the longest matching prefix wins.
LAYER_OF = {
    "artifacts": "artifacts", "errors": "artifacts", "safe_paths": "artifacts", "answer_cache": "artifacts",
    "openai_client": "artifacts", "redaction": "artifacts",
    "data": "data", "demo": "data", "openai_ft": "data",  # the OpenAI chat format, its tokens, cost and screening
    "model": "model",
    "generation": "generation", "openai_ft.jobs": "generation",  # OpenAI fine-tuning jobs through the API client
    "evaluate": "evaluate",
    "training": "training",  # the LightningModule, its callbacks, resume and telemetry
    "": "commands", "__main__": "commands", "cli": "commands", "trainer_cli": "commands", "prepare": "commands",
    "export": "commands", "generation.command": "commands", "evaluate.command": "commands",
    "evaluate.perplexity_command": "commands", "openai_ft.commands": "commands",
}


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name (without the package prefix; the package itself is "") -> file."""
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root / PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(root: Path = ROOT) -> set[tuple[str, str]]:
    """(importer, imported) pairs between the package's modules, at any depth of the code."""
    known = modules(root)
    edges = set()
    for name, path in known.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        package = [p for p in package if p]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = [PACKAGE, *package[:len(package) - node.level + 1]]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                targets = [stem] + [f"{stem}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                if target != PACKAGE and not target.startswith(PACKAGE + "."):
                    continue
                dotted = target[len(PACKAGE) + 1:]
                while dotted and dotted not in known:  # `from .x import name` names a module or an attribute
                    dotted = dotted.rpartition(".")[0]
                if dotted != name:
                    edges.add((name, dotted))
    return edges


def layer_of(module: str) -> str:
    matches = [prefix for prefix in LAYER_OF if module == prefix or module.startswith(prefix + ".") or prefix == ""]
    return LAYER_OF[max(matches, key=len)]


def upward(edges: set[tuple[str, str]]) -> list[str]:
    """Imports from a lower layer to a higher one, as 'a (layer) -> b (layer)'."""
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    return sorted(f"{a} ({layer_of(a)}) -> {b} ({layer_of(b)})" for a, b in edges
                  if rank[layer_of(a)] < rank[layer_of(b)])


def cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """The import cycles between modules, each as its modules in order (one per strongly connected component)."""
    graph: dict[str, list[str]] = {}
    for a, b in sorted(edges):
        graph.setdefault(a, []).append(b)
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, []):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def mermaid(edges: set[tuple[str, str]], names: list[str]) -> str:
    """A Mermaid flowchart, one box per layer, bottom layer at the bottom; the package itself is left out (it
    only names what ``from lightning_review import ...`` gives)."""
    node = {name: "n_" + name.replace(".", "_") for name in names}
    lines = ["%% generated by tools/import_graph.py: do not edit", "flowchart BT"]
    for layer in LAYERS:
        members = [name for name in names if name and layer_of(name) == layer]
        lines.append(f"  subgraph {layer}")
        lines += [f"    {node[name]}[\"{name}\"]" for name in members]
        lines.append("  end")
    lines += [f"  {node[a]} --> {node[b]}" for a, b in sorted(edges) if a and b]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the drawing is out of date")
    args = parser.parse_args(argv)
    edges = imports()
    text = mermaid(edges, sorted(modules()))
    problems = upward(edges) + [" -> ".join(c) for c in cycles(edges)]
    for problem in problems:
        print(f"layering: {problem}", file=sys.stderr)
    if args.check:
        current = DRAWING.read_text(encoding="utf-8") if DRAWING.is_file() else ""
        if current != text:
            print(f"{DRAWING} is out of date: python tools/import_graph.py", file=sys.stderr)
            return 1
    else:
        DRAWING.write_text(text, encoding="utf-8")
        print(f"wrote {DRAWING} ({len(edges)} imports)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
