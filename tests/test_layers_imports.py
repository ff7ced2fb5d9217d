"""Imports point one way: ops, data -> models -> checkpoint I/O / convert -> evaluate -> train
-> entry points. Every module under edvr_jax is parsed (function-level imports included)."""

import ast
import pathlib

PKG = pathlib.Path(__file__).resolve().parent.parent / "edvr_jax"
LOWER = ("convert", "models", "ops", "data", "errors", "zoo")  # never import evaluate or train


def imports(path: pathlib.Path) -> set[str]:
    """Every edvr_jax module named by an import anywhere in the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}  # from edvr_jax import data
    return {n for n in names if n == "edvr_jax" or n.startswith("edvr_jax.")}


def part(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_every_import_points_down():
    modules = sorted(PKG.rglob("*.py"))
    assert len(modules) > 40
    bad = []
    for path in modules:
        rel = path.relative_to(PKG)
        top = rel.parts[0].removesuffix(".py")
        for name in sorted(imports(path)):
            target = part(name)
            if top in LOWER and target in ("evaluate", "train"):
                bad.append(f"{rel} imports {name}")
            if top == "evaluate" and target == "train":
                bad.append(f"{rel} imports {name}")
            # The public metrics module names the implementation in evaluate/metrics.py, nothing else.
            if top == "metrics" and target in ("evaluate", "train") and not name.startswith("edvr_jax.evaluate.metrics"):
                bad.append(f"{rel} imports {name}")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_function_level_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from edvr_jax.train.checkpoints import x\n    import edvr_jax.evaluate\n"
                 "from edvr_jax import data\n")
    assert imports(f) == {"edvr_jax.train.checkpoints", "edvr_jax.train.checkpoints.x", "edvr_jax.evaluate",
                          "edvr_jax", "edvr_jax.data"}
