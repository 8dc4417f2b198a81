"""Train one random forest on the training set.

Fits a RandomForestClassifier (--n-estimators, --max-depth, random_state=--seed,
n_jobs=1) on every column of data/train.csv but `target`, and writes
<out>/model.pkl (pickle) and <out>/params.json (the hyperparameters and features).
The same input and arguments give byte-identical files.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

from sklearn.ensemble import RandomForestClassifier

from wineflow.io import read_xy, write_json

PICKLE_PROTOCOL = 5  # fixed, so the bytes do not depend on the Python default


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", default="data/train.csv", help="training CSV (default: %(default)s)")
    parser.add_argument("--max-depth", type=int, required=True, help="maximum depth of each tree")
    parser.add_argument("--n-estimators", type=int, required=True, help="number of trees")
    parser.add_argument("--seed", type=int, required=True, help="random_state of the forest")
    parser.add_argument("--out", required=True, help="folder to write model.pkl and params.json into")
    args = parser.parse_args(argv)
    if args.max_depth < 1 or args.n_estimators < 1:
        parser.error("--max-depth and --n-estimators must be at least 1")

    try:
        X, y, features = read_xy(args.train)
        model = RandomForestClassifier(
            n_estimators=args.n_estimators,
            max_depth=args.max_depth,
            random_state=args.seed,
            n_jobs=1,
        )
        model.fit(X, y)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        with (out / "model.pkl").open("wb") as f:
            pickle.dump(model, f, protocol=PICKLE_PROTOCOL)
        write_json(
            out / "params.json",
            {
                "features": features,
                "max_depth": args.max_depth,
                "n_estimators": args.n_estimators,
                "seed": args.seed,
            },
        )
    except (OSError, ValueError) as exc:
        print(f"train.py: error: {exc}", file=sys.stderr)
        return 1

    train_acc = float(model.score(X, y))
    print(f"train: max_depth={args.max_depth} n_estimators={args.n_estimators} "
          f"train accuracy={train_acc:.4f} -> {out / 'model.pkl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
