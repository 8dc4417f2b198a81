"""Where the scoring server's downloads go: a remote model to a fresh folder of its own, a local
one used in place; both decided by flowml.models.uri.is_remote."""

from __future__ import annotations

import pytest

from flowml.models.serving.served import ModelInfo
from flowml.models.serving.watch import Downloads
from flowml.models.uri import is_remote


@pytest.mark.parametrize("location, remote", [
    ("mlflow-artifacts:/1/models/m-1/artifacts", True),
    ("HTTPS://host/api/2.0/mlflow-artifacts/artifacts/x", True),
    ("http://127.0.0.1:5000/x", True),
    ("/tmp/model", False),
    ("file:///tmp/model", False),
    ("relative/model", False),
    ("mlflow-artifacts", False),  # a folder of that name, no scheme
])
def test_is_remote(location, remote):
    assert is_remote(location) is remote


def test_a_local_model_is_served_in_place(tmp_path, classifier, iris):
    import flowml.sklearn

    flowml.sklearn.save_model(classifier, tmp_path / "m", input_example=iris[0][:3])
    downloads = Downloads()
    try:
        assert downloads.fetch(ModelInfo(str(tmp_path / "m"), None, str(tmp_path / "m"))) == str(tmp_path / "m")
        assert downloads.fetch(ModelInfo("x", None, (tmp_path / "m").as_uri())) == str(tmp_path / "m")
    finally:
        downloads.close()
