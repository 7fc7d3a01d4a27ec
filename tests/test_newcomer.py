"""A newcomer's first hour: `reprlab datasets` names the own-file datasets, class folders sort naturally."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from reprlab.data.folders import load_image_folder


def test_class_folders_sort_naturally_and_labels_follow_the_folder(tmp_path):
    names = [f"s{i}" for i in (10, 2, 1, 11, 3)]
    for name in names:
        (tmp_path / name).mkdir()
        value = int(name[1:]) * 10  # each class has its own grey level: the image says which folder it came from
        Image.fromarray(np.full((4, 4), value, dtype=np.uint8)).save(tmp_path / name / "a.png")
    data = load_image_folder(tmp_path)
    assert data.class_names == ["s1", "s2", "s3", "s10", "s11"]
    for i in range(len(data)):
        folder = Path(data.meta["files"][i]).parts[0]
        assert data.class_names[int(data.labels[i])] == folder
        assert int(data.images[i].flatten()[0]) == int(folder[1:]) * 10


def test_datasets_lists_arrays_and_folder(tmp_path, capsys):
    from reprlab.cli.main import main

    assert main(["datasets", "--data-dir", str(tmp_path), "--quiet"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert {"fashion-mnist", "arrays", "folder"} <= set(lines)
    assert "data.name=arrays data.path=" in lines["arrays"] and "data.name=folder data.path=" in lines["folder"]
