"""The PyTorch flavor: the whole module (MLflow's format, loaded by MLflow too) and the
weights-only state dict, each loaded back and served as python_function."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

torch = pytest.importorskip("torch")

import flowml.pyfunc  # noqa: E402
import flowml.pytorch  # noqa: E402
from flowml.models.errors import ModelError, ModelInputError, UnsafeSerializationWarning  # noqa: E402


class Net(torch.nn.Module):
    def __init__(self, width: int = 4, out: int = 2):
        super().__init__()
        self.linear = torch.nn.Linear(width, out)

    def forward(self, x):
        return torch.softmax(self.linear(x), dim=1)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return Net(4, 2).eval()


X = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)


def expected(net, x=X):
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def test_whole_module_round_trips_and_warns(tmp_path, net):
    with pytest.warns(UnsafeSerializationWarning):
        flowml.pytorch.save_model(net, tmp_path / "m", input_example=X[:2])
    conf = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())["flavors"]
    assert conf["python_function"]["loader_module"] == "mlflow.pytorch"
    assert (tmp_path / "m" / "data" / "model.pth").is_file()
    with pytest.warns(UnsafeSerializationWarning):
        module = flowml.pytorch.load_model(tmp_path / "m")
    np.testing.assert_allclose(expected(module), expected(net))
    with pytest.warns(UnsafeSerializationWarning):
        model = flowml.pyfunc.load_model(tmp_path / "m")
    out = model.predict(X)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, expected(net), rtol=1e-6)
    with pytest.raises(ModelInputError, match="expected dtype float32, found float64"):  # double -> float loses
        model.predict(X.astype(np.float64))
    spec = model.metadata.signature.inputs.to_dict()
    assert spec == [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]
    with pytest.raises(ModelInputError, match=r"expected shape \[-1, 4\], found \[6, 3\]"):
        model.predict(X[:, :3])


def test_state_dict_loads_weights_only_without_warnings(tmp_path, net):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsafeSerializationWarning)
        flowml.pytorch.save_model(net, tmp_path / "m", serialization="state_dict", init_kwargs={"width": 4, "out": 2},
                                  input_example=pd.DataFrame(X[:2], columns=list("abcd")))
        model = flowml.pyfunc.load_model(tmp_path / "m")
        module = flowml.pytorch.load_model(tmp_path / "m")
    assert isinstance(module, Net)
    conf = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())["flavors"]["pytorch"]
    assert conf["module_class"] == f"{__name__}:Net" and conf["init_kwargs"] == {"width": 4, "out": 2}
    np.testing.assert_allclose(model.predict(pd.DataFrame(X, columns=list("abcd"))), expected(net), rtol=1e-6)


def test_state_dict_refusals(tmp_path, net):
    class Local(torch.nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(ModelError, match="not importable by name"):
        flowml.pytorch.save_model(Local(), tmp_path / "a", serialization="state_dict")
    with pytest.raises(ModelError, match="weights do not fit"):
        flowml.pytorch.save_model(net, tmp_path / "b", serialization="state_dict", init_kwargs={"width": 3})
    with pytest.raises(ModelError, match="serialization must be"):
        flowml.pytorch.save_model(net, tmp_path / "c", serialization="onnx")
    with pytest.raises(ModelError, match="needs a torch.nn.Module"):
        flowml.pytorch.save_model(object(), tmp_path / "d")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("module_class, refusal", [
    ("subprocess:run", "not a torch.nn.Module subclass"),
    ("os:system", "not a torch.nn.Module subclass"),
    ("torch.nn:functional", "not a torch.nn.Module subclass"),  # a module, not a class
    ("no_such_package_x:Net", "cannot import the module_class"),
    ("subprocess", "must be 'package.module:Class'"),
])
def test_a_state_dict_model_calls_only_module_classes(tmp_path, net, module_class, refusal):
    flowml.pytorch.save_model(net, tmp_path / "m", serialization="state_dict", init_kwargs={"width": 4, "out": 2})
    mlmodel = tmp_path / "m" / "MLmodel"
    doc = yaml.safe_load(mlmodel.read_text())
    marker = tmp_path / "ran"
    doc["flavors"]["pytorch"].update(module_class=module_class, init_kwargs={"args": ["touch", str(marker)]})
    mlmodel.write_text(yaml.safe_dump(doc))
    for load in (flowml.pyfunc.load_model, flowml.pytorch.load_model):
        with pytest.raises(ModelError, match=refusal):
            load(tmp_path / "m")
    assert not marker.exists()


@pytest.mark.slow  # MLflow's torch.export of the pt2 model takes ~20 s
def test_mlflow_loads_a_flowml_module_and_flowml_loads_mlflows(tmp_path, net):
    mlflow = pytest.importorskip("mlflow")
    import mlflow.pytorch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flowml.pytorch.save_model(net, tmp_path / "ours")
        np.testing.assert_allclose(mlflow.pyfunc.load_model(str(tmp_path / "ours")).predict(X), expected(net),
                                   rtol=1e-6)
        mlflow.pytorch.save_model(net, str(tmp_path / "pickled"), serialization_format="pickle")
        mlflow.pytorch.save_model(net, str(tmp_path / "exported"), input_example=X[:2])  # MLflow's default: pt2
        for theirs in ("pickled", "exported"):
            np.testing.assert_allclose(flowml.pyfunc.load_model(tmp_path / theirs).predict(X), expected(net),
                                       rtol=1e-6)
