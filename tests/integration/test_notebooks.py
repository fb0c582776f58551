"""Each notebook runs end to end with tiny settings (nbclient), and is stored without outputs."""
import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO
from tests.unit.test_coco32 import write_fake_coco

NOTEBOOKS = REPO / "notebooks"
TINY = '{"generator_width": 8, "classifier_width": 8, "visual_disc_width": 4, "latent_channels": 8}'
TINY_ATTENTION = '{"guide_width": 8, "mask_warmup_epochs": 0}'
TINY_MODEL = TINY[:-1] + ", " + TINY_ATTENTION[1:]


def _overrides(name: str, tmp_path) -> str:
    if name == "01_quickstart":
        return f'EPOCHS = 1\nMODEL_ARGS = {TINY_MODEL}\nRUN_DIR = "{tmp_path / "run"}"'
    if name == "02_coco32":
        write_fake_coco(tmp_path / "coco")
        return (f'COCO_ROOT = "{tmp_path / "coco"}"\nOUT = "{tmp_path / "coco32"}"\nCLASSES = ["cat", "dog"]\nSPLITS = ["val2017"]\n'
                "PER_CLASS, TEST_PER_CLASS = 10, 2")
    return f'EPOCHS = 1\nMODEL_ARGS = {TINY}\nATTENTION_ARGS = {TINY_ATTENTION}\nRUN_ROOT = "{tmp_path / "runs"}"\nN_IMAGES = 2'


@pytest.mark.parametrize("name", ["01_quickstart", "02_coco32", "03_gradcam"])
def test_notebook_runs_with_tiny_settings(name, tmp_path):
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert all(not cell.get("outputs") and cell.get("execution_count") is None
               for cell in notebook.cells if cell.cell_type == "code"), "store notebooks without outputs"
    assert not any("tests" in cell.source for cell in notebook.cells if cell.cell_type == "code")  # package only
    parameters = next(cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", []))
    parameters.source += "\n" + _overrides(name, tmp_path)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    images = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
              if "image/png" in output.get("data", {})]
    assert images, f"{name} displayed no figure"
