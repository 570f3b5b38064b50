"""The notebooks execute end to end (with a small budget read from the environment)."""
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert {p.stem for p in NOTEBOOKS} >= {"quickstart", "learners_vs_pde", "heterogeneous", "bring_your_own_agent"}


def _tree(folder):
    return {p.relative_to(folder) for p in folder.rglob("*")}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, tmp_path, monkeypatch):
    monkeypatch.setenv("MFGBENCH_NOTEBOOK_BUDGET", "10")
    monkeypatch.setenv("MFGBENCH_NOTEBOOK_REFERENCE_SECONDS", "20")
    # run beside the notebook, as jupyter does, and let the notebook choose its cache (the
    # repository's results/): executing it must create nothing under notebooks/
    monkeypatch.delenv("MFGBENCH_CACHE", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    before = _tree(path.parent)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    finally:
        created = sorted(_tree(path.parent) - before, key=lambda p: len(p.parts), reverse=True)
        for rel in created:   # deepest first; what this run left must not hide it from the next run
            target = path.parent / rel
            target.rmdir() if target.is_dir() else target.unlink()
    errors = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    assert not created, (f"{path.name} created {sorted(map(str, created))} under notebooks/ "
                         "(caches go under the repository's results/)")
