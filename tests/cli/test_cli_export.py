"""``regmtl export``: a model saved by ``regmtl fit`` (z-scored columns, raw-unit coefficients)
exported to ONNX; ONNX Runtime on the file's rows equals ``regmtl predict``'s predictions."""

from __future__ import annotations

import numpy as np
import pytest

import regmtl as rm
from regmtl.cli import main

ort = pytest.importorskip("onnxruntime")
pd = pytest.importorskip("pandas")


def _table(tmp_path, seed=0):
    rng = np.random.default_rng(seed)
    n = 240
    df = pd.DataFrame(rng.standard_normal((n, 3)) * [1.0, 10.0, 0.1] + [0.0, 50.0, -3.0],
                      columns=["price", "size", "rate"])
    df["store"] = rng.choice(["s1", "s2", "s3"], n)
    df["sales"] = rng.poisson(np.exp(0.3 * df["price"] + 0.01 * (df["size"] - 50)))
    path = tmp_path / "sales.csv"
    df.to_csv(path, index=False)
    return df, path


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-6), ("float32", 1e-4)])
def test_export_of_a_fitted_file_equals_predict(tmp_path, capsys, dtype, tol):
    df, path = _table(tmp_path)
    model_path = tmp_path / "m.npz"
    assert main(["fit", str(path), "--task-col", "store", "--target", "sales", "--loss",
                 "poisson", "--alpha", "0.01", "--out", str(model_path)]) == 0
    assert main(["export", str(model_path), "--dtype", dtype]) == 0
    printed = capsys.readouterr().out
    assert "verified by ONNX Runtime" in printed and "task string" in printed
    model = rm.load(model_path)
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    X = df[["price", "size", "rate"]].to_numpy(dtype)
    out = sess.run(["prediction"], {"X": X, "task": df["store"].to_numpy(object)})[0]
    ref = model.predict(df[["price", "size", "rate"]], task=df["store"].to_numpy())
    assert np.max(np.abs(out - ref)) / max(1.0, np.abs(ref).max()) <= tol


def test_export_refuses_its_own_model_path_and_a_missing_file(tmp_path, capsys):
    df, path = _table(tmp_path)
    model_path = tmp_path / "m.npz"
    main(["fit", str(path), "--task-col", "store", "--target", "sales", "--alpha", "0.01",
          "--out", str(model_path)])
    assert main(["export", str(model_path), "--out", str(model_path)]) == 2
    assert "is the model itself" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "none.npz")]) == 2
    assert "no such model file" in capsys.readouterr().err
    assert main(["export", str(model_path), "--offset"]) == 2
    assert "offset=True" in capsys.readouterr().err
