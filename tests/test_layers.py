"""The package's imports, read from its source: layers that only import downwards, no cycle.

Every import statement of every module counts, those inside functions too.
The layers are those of the package docstring (``fastem/__init__.py``).
"""

import ast
import fnmatch
from pathlib import Path

import pytest

import fastem

PACKAGE = Path(fastem.__file__).parent

# Lowest first; a module may import modules of its own layer or below.
LAYERS = [
    ("rules", ["fastem._version", "fastem._validation", "fastem._exceptions",
               "fastem._text"]),
    ("observed entries", ["fastem._observed", "fastem.datasets"]),
    ("kernels", ["fastem._pure", "fastem._kernels", "fastem._kernels_avx2",
                 "fastem._backend", "fastem._pass"]),
    ("EM driver and the data interface", ["fastem._em", "fastem._source",
                                          "fastem._predictions"]),
    ("initialisations", ["fastem._init"]),
    ("data sources", ["fastem._memory", "fastem.dask", "fastem.dask.*", "fastem._input"]),
    ("estimators", ["fastem._base", "fastem._persist", "fastem.mixture",
                    "fastem.recommender", "fastem.imputer", "fastem._loading",
                    "fastem.course", "fastem.course.*"]),
    ("selection, I/O, the package", ["fastem._selection", "fastem.io", "fastem.io.*",
                                     "fastem"]),
    ("command line", ["fastem.cli", "fastem.cli.*", "fastem.__main__"]),
]
COMPILED = ("fastem._kernels", "fastem._kernels_avx2")


def _modules():
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


MODULES = _modules()


def _layer(module):
    for rank, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns):
            return rank
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def _target(name):
    """The module of the package that ``name`` (a module or a name in one) is."""
    while name not in MODULES and name not in COMPILED and "." in name:
        name = name.rpartition(".")[0]
    return name if name in MODULES or name in COMPILED else None


def _package(module, path):
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _from(node, package):
    """The absolute name of the module of ``from ... import``."""
    base = node.module or ""
    if node.level:
        anchor = package
        for _ in range(node.level - 1):
            anchor = anchor.rpartition(".")[0]
        base = f"{anchor}.{base}" if base else anchor
    return base


def _imports(module, path):
    package = _package(module, path)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _from(node, package)
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] == "fastem":
                target = _target(name)
                if target is not None and target != module:
                    found.add(target)
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def test_every_module_has_a_layer():
    for module in list(MODULES) + list(COMPILED):
        _layer(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down(module):
    rank = _layer(module)
    upward = [f"{target} ({LAYERS[_layer(target)][0]})" for target in sorted(GRAPH[module])
              if _layer(target) > rank]
    assert not upward, f"{module} ({LAYERS[rank][0]}) imports upwards: {upward}"


def test_no_import_cycle():
    # Depth-first search for a back edge.
    state = {}

    def visit(module, stack):
        state[module] = "open"
        for target in sorted(GRAPH.get(module, ())):
            if state.get(target) == "open":
                cycle = stack[stack.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, stack + [target])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


def test_the_estimator_module_knows_no_dask():
    source = MODULES["fastem.mixture"].read_text(encoding="utf-8")
    code = [node for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.Import, ast.ImportFrom, ast.Name, ast.Attribute))]
    for node in code:
        text = ast.unparse(node).lower()
        assert "dask" not in text, f"fastem.mixture refers to Dask: {text}"
    assert not any("dask" in target for target in GRAPH["fastem.mixture"])


def test_dask_and_io_never_import_the_estimators():
    estimators = {"fastem", "fastem.mixture", "fastem.recommender",
                    "fastem.imputer", "fastem._loading",
                  "fastem._selection", "fastem._input"}
    for module in MODULES:
        if module.startswith(("fastem.dask", "fastem.io")):
            taken = {target for target in GRAPH[module] if target in estimators
                     or target.startswith(("fastem.cli", "fastem.course"))}
            assert not taken, f"{module} imports {sorted(taken)}"


def test_no_private_name_is_taken_from_another_package():
    # Private modules (``from .. import _pass``) are how the package uses its
    # parts; a name with a leading underscore inside one stays in its package.
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level == 1:
                continue
            base = _from(node, _package(module, path))
            if base.split(".")[0] != "fastem":
                continue
            for alias in node.names:
                name = f"{base}.{alias.name}"
                if (alias.name.startswith("_") and alias.name != "__version__"
                        and name not in MODULES and name not in COMPILED):
                    raise AssertionError(f"{module} imports the private name {name}")
