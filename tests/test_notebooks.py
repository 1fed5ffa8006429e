"""The two notebooks, run in a kernel as JupyterLab runs them (nbval also runs them and checks the tour's labels)."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from classifier.testing import ROOT

NOTEBOOKS = ROOT / "notebooks"


def _run(name: str, *extra_cells: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in extra_cells]
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return notebook


def _outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [output for cell in notebook.cells for output in cell.get("outputs", [])]


@pytest.mark.parametrize(
    ("name", "extra_cells"),
    [("app.ipynb", ("_.wait()",)), ("tour.ipynb", ())],  # "_" is the app: wait until its model is loaded
)
def test_notebooks_run_without_errors_or_anything_on_stderr(name: str, extra_cells: tuple[str, ...]) -> None:
    outputs = _outputs(_run(name, *extra_cells))
    assert [output for output in outputs if output["output_type"] == "error"] == []
    # LiteRT's C++ logger would print "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." here.
    assert [output["text"] for output in outputs if output.get("name") == "stderr"] == []


def test_the_app_notebook_is_thin_and_builds_the_app() -> None:
    notebook = nbformat.read(NOTEBOOKS / "app.ipynb", as_version=4)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert code == ["from classifier.ui import build_app\n\nbuild_app()"]
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")


def test_the_tour_checks_its_labels_and_shows_its_charts() -> None:
    notebook = nbformat.read(NOTEBOOKS / "tour.ipynb", as_version=4)
    checked = [cell for cell in notebook.cells if cell.cell_type == "code" and "# NBVAL_CHECK_OUTPUT" in cell.source]
    assert len(checked) >= 2 and "Grace Hopper: military uniform" in checked[0].outputs[0]["text"]
    kinds = {kind for cell in notebook.cells for output in cell.get("outputs", []) for kind in output.get("data", {})}
    assert {"image/png", "image/jpeg"} <= kinds  # the chart, and the heatmap over a photo
