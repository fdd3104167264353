"""The package layers, read from the code's own imports: no import points up, and no import is made late.

A lower layer never imports a higher one. A late import (inside a function) is how a cycle gets dodged, so
each one is listed here with why it is late; a new one fails this test until it is moved to the top or
listed with its reason.
"""
import ast
import pathlib

import swarmml

ROOT = pathlib.Path(swarmml.__file__).parent

# Lowest first. A module may import its own package and any package in a lower layer.
LAYERS = [
    {"_version", "errors", "labels", "console", "metrics_formats"},  # shared, imports nothing of swarmml's above
    {"engine"},  # the only code that talks to an engine; plain data out
    {"stack"},  # stack files -> specs, plans, the autoscale policy labels (pure)
    {"cluster"},  # the swarms swarmml makes, their images, registry and endpoints
    {"build"},  # predictor images from a user's models
    {"ops"},  # deploy and the day-2 verbs
    {"autoscale"},  # the controller scales through ops
    {"observe"},  # top, logs, Prometheus: reads what all of the above run
    {"verify"},  # drives ops and observes
    {"api", "cli", "__init__", "__main__"},  # the surfaces
]
RANK = {part: i for i, layer in enumerate(LAYERS) for part in layer}

# importer -> {imported: why it is late}. Each is a lower layer's module, imported on first use for speed or
# an optional dependency, never to dodge a cycle (the rank check below holds for these too).
LATE = {
    "swarmml": {"swarmml.api": "the API pulls in build (numpy, scikit-learn); `import swarmml` stays light"},
    "swarmml.engine": {"swarmml.console": "rich's console, only when -v asks for a line"},
    "swarmml.cli": {"swarmml.cli.autoscale_cmds": "each command group on first use: `swarmml --help` stays fast",
                    "swarmml.cli.build_cmds": "", "swarmml.cli.cluster_cmds": "", "swarmml.cli.generate_cmds": "",
                    "swarmml.cli.logs_cmds": "", "swarmml.cli.ops_cmds": "", "swarmml.cli.stack_cmds": "",
                    "swarmml.cli.top_cmds": "", "swarmml.cli.verify_cmds": ""},
}


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _part(module):
    """The layer key of a swarmml module: its package under swarmml, or the top-level module's name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path):
    """(imported swarmml module, line, late) for each import of swarmml in the file."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    found = []

    def visit(node, late):
        for child in ast.iter_child_nodes(node):
            is_late = late or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("swarmml") \
                    and child.module.split(".")[0] == "swarmml":
                for alias in child.names:
                    sub = f"{child.module}.{alias.name}"
                    mod = sub if (ROOT.parent / (sub.replace(".", "/") + ".py")).exists() or \
                        (ROOT.parent / sub.replace(".", "/")).is_dir() else child.module
                    found.append((mod, child.lineno, is_late))
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "swarmml":
                        found.append((alias.name, child.lineno, is_late))
            elif isinstance(child, ast.If) and id(child) in top and _is_type_checking(child):
                continue  # annotations only: nothing is imported at run time
            visit(child, is_late)

    visit(tree, False)
    return found


def _is_type_checking(node):
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def test_every_package_has_a_layer():
    parts = {_part(m) for m, _ in _modules()}
    assert parts - set(RANK) == set(), "a package that is in no layer: add it to LAYERS"


def test_no_import_points_up():
    upward = []
    for module, path in _modules():
        mine = _part(module)
        for imported, line, _ in _imports(path):
            theirs = _part(imported)
            if RANK[theirs] > RANK[mine] or (RANK[theirs] == RANK[mine] and theirs != mine and mine != "__init__"
                                             and RANK[mine] != len(LAYERS) - 1):
                upward.append(f"{path.relative_to(ROOT.parent)}:{line}: {module} ({mine}) imports {imported} "
                              f"({theirs})")
    assert upward == []


def test_no_late_import_but_the_listed_ones():
    late = []
    for module, path in _modules():
        allowed = LATE.get(module, {})
        for imported, line, is_late in _imports(path):
            if is_late and imported not in allowed:
                late.append(f"{path.relative_to(ROOT.parent)}:{line}: {module} imports {imported} late")
    assert late == []


def test_the_layer_check_sees_an_upward_import(tmp_path):
    # The checker itself: a made-up engine module importing ops is reported, with its line.
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\ndef f():\n    from swarmml.ops import scale\n")
    assert _imports(bad) == [("swarmml.ops.scale", 4, True)]
    assert RANK[_part("swarmml.ops.scale")] > RANK[_part("swarmml.engine.swarm")]
