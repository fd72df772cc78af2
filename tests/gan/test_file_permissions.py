"""Files and folders we write atomically get the usual permissions (0666 / 0777 minus the umask),
not the 0600 / 0700 of tempfile's private temporaries: exported PNGs, models, data sets and
videos must be readable by whoever the user's umask allows."""

import os
import stat

import numpy as np
import pytest

from gan.data.dataset_tool import DatasetWriter
from gan.io.files import atomic_write_bytes
from gan.recipe import write_png


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_files_and_folders_follow_the_umask(tmp_path, umask_022):
    atomic_write_bytes(tmp_path / "model.safetensors", b"x")
    assert mode(tmp_path / "model.safetensors") == 0o644
    write_png(tmp_path / "seed.png", np.zeros((4, 4, 3), np.uint8), {"seed": 1})
    assert mode(tmp_path / "seed.png") == 0o644
    image = np.zeros((8, 8, 3), np.uint8)
    for dest in (tmp_path / "data.zip", tmp_path / "data_folder"):
        with DatasetWriter(str(dest)) as writer:
            writer.add(image)
        assert mode(dest) == (0o644 if dest.suffix == ".zip" else 0o755)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "data.zip",
        "data_folder",
        "model.safetensors",
        "seed.png",
    ]  # no temporaries left
