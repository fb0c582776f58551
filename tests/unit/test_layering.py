"""The package reads top-down: no module imports a layer above its own, and the engine, the protocol
runner and the studies never name a particular model (models declare capabilities instead)."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "attn_ocgan"

# Lower number = lower layer. A module may import its own layer or any lower one.
LAYERS = {
    "errors": 0, "utils": 0,
    "config": 1, "reference": 1,
    "registry": 2, "layers": 2, "data": 2,
    "models": 3, "viz": 3,
    "engine": 4,
    "protocol": 5, "studies": 5,
    "cli": 6, "__init__": 6, "__main__": 6,
}
MODEL_FOLDERS = [p.name for p in (PACKAGE / "models").iterdir() if (p / "__init__.py").is_file() and p.name != "components"]


def _layer_of(module: str) -> str:
    """'attn_ocgan.engine.trainer' -> 'engine'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path, root: Path = PACKAGE) -> list[str]:
    """Every attn_ocgan module this file imports (module level and inside functions), absolute."""
    package = ".".join(path.relative_to(root.parent).with_suffix("").parts)
    if path.name == "__init__.py":
        package = package.rsplit(".", 1)[0] + "._"  # relative imports resolve against the package itself
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:-node.level]
                module = ".".join(base + ([node.module] if node.module else []))
                # 'from . import models' names a sub-module
                modules = [module] if node.module else [f"{module}.{alias.name}" for alias in node.names]
            else:
                modules = [node.module or ""]
            names += [m for m in modules if m.startswith("attn_ocgan")]
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names if alias.name.startswith("attn_ocgan")]
    return names


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def test_every_layer_of_the_package_is_ranked():
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in _modules()}
    assert tops <= set(LAYERS), f"rank the new layer(s) in LAYERS: {sorted(tops - set(LAYERS))}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_upward(path):
    upward = _upward(path)
    assert not upward, f"{path.relative_to(PACKAGE)} imports from a higher layer: {upward}"


@pytest.mark.parametrize("layer", ["engine", "protocol", "studies", "viz", "data"])
def test_generic_code_never_names_a_model(layer):
    offenders = []
    for path in (PACKAGE / layer).rglob("*.py"):
        for name in _imports(path):
            if name.startswith("attn_ocgan.models.") and name.split(".")[2] in MODEL_FOLDERS:
                offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
        if "has_attention" in path.read_text():
            offenders.append(f"{path.relative_to(PACKAGE)} tests for attention instead of calling attention_maps")
    assert not offenders, offenders


def _upward(path: Path, root: Path = PACKAGE) -> list[str]:
    own = LAYERS[path.relative_to(root).parts[0].removesuffix(".py")]
    return [name for name in _imports(path, root) if LAYERS.get(_layer_of(name), 99) > own]


def test_the_layering_check_catches_a_relative_upward_import(tmp_path):
    fake = tmp_path / "attn_ocgan" / "utils" / "io.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("from ..engine.trainer import train\nfrom . import environment\n")
    assert _imports(fake, tmp_path / "attn_ocgan") == ["attn_ocgan.engine.trainer", "attn_ocgan.utils.environment"]
    assert _upward(fake, tmp_path / "attn_ocgan") == ["attn_ocgan.engine.trainer"]
