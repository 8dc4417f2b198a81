"""Score every trained model on the test set and keep the best one.

Loads each <models>/depth-*/model.pkl, measures accuracy and macro F1 on
data/test.csv, saves the winner (highest accuracy, then highest macro F1, then
the shallowest) to <best>/ as an MLflow-format model (skops, with its signature
and an input example; `flowml models serve -m <best>` serves it) with
<best>/info.json, and writes the winner's scores to metrics.json as a flat JSON
object of numbers.
"""

from __future__ import annotations

import argparse
import pickle
import re
import shutil
import sys
from pathlib import Path

from sklearn.metrics import accuracy_score, f1_score

import flowml.sklearn
from wineflow.io import read_xy, write_json

DIGITS = 6  # metrics are rounded so metrics.json has stable bytes
MODEL_DIR = re.compile(r"^depth-(\d+)$")


def find_models(models: Path) -> list[tuple[int, Path]]:
    """Return (max_depth, model.pkl) for every models/depth-N/model.pkl, by depth."""
    if not models.is_dir():
        return []
    found = []
    for child in models.iterdir():
        m = MODEL_DIR.match(child.name)
        if m and (child / "model.pkl").is_file():
            found.append((int(m.group(1)), child / "model.pkl"))
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="models", help="folder holding depth-*/model.pkl (default: %(default)s)")
    parser.add_argument("--test", default="data/test.csv", help="test CSV (default: %(default)s)")
    parser.add_argument("--best", default="best_model", help="folder to copy the best model into (default: %(default)s)")
    parser.add_argument("--metrics", default="metrics.json", help="metrics file to write (default: %(default)s)")
    args = parser.parse_args(argv)

    try:
        models = find_models(Path(args.models))
        if not models:
            raise ValueError(f"no {args.models}/depth-*/model.pkl found: run train first")
        X, y, _ = read_xy(args.test)
        scores, loaded = [], {}
        for depth, path in models:
            with path.open("rb") as f:
                model = loaded[path] = pickle.load(f)
            pred = model.predict(X)
            acc = round(float(accuracy_score(y, pred)), DIGITS)
            f1 = round(float(f1_score(y, pred, average="macro")), DIGITS)
            scores.append((acc, f1, -depth, path))
        acc, f1, neg_depth, path = max(scores, key=lambda s: s[:3])
        depth = -neg_depth

        best = Path(args.best)
        if best.exists():
            shutil.rmtree(best)  # no stale files from an earlier winner
        # skops loads only the types it is told to trust; a forest holds scikit-learn's Tree objects
        flowml.sklearn.save_model(loaded[path], str(best), input_example=X[:5],
                                  skops_trusted_types=["sklearn.tree._tree.Tree"])
        write_json(
            best / "info.json",
            {
                "accuracy": acc,
                "candidates": {f"depth-{-d}": {"accuracy": a, "f1_macro": f} for a, f, d, _ in scores},
                "f1_macro": f1,
                "max_depth": depth,
                "source": path.as_posix(),
            },
        )
        write_json(args.metrics, {"accuracy": acc, "best_max_depth": depth, "f1_macro": f1})
    except (OSError, ValueError, pickle.UnpicklingError) as exc:
        print(f"evaluate.py: error: {exc}", file=sys.stderr)
        return 1

    print(f"evaluate: {len(scores)} models, best max_depth={depth} "
          f"accuracy={acc:.4f} f1_macro={f1:.4f} -> {best}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
