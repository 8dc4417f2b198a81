"""Split the raw wine data into a training set and a test set.

Reads data/wine.csv, makes a stratified split (scikit-learn's train_test_split with
--test-size and --seed) and writes data/train.csv and data/test.csv.
The same input and arguments always give byte-identical outputs.
"""

from __future__ import annotations

import argparse
import sys

from sklearn.model_selection import train_test_split

from wineflow.io import read_xy, write_xy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", default="data/wine.csv", help="raw CSV (default: %(default)s)")
    parser.add_argument("--train", default="data/train.csv", help="training CSV to write (default: %(default)s)")
    parser.add_argument("--test", default="data/test.csv", help="test CSV to write (default: %(default)s)")
    parser.add_argument("--test-size", type=float, required=True, help="fraction of rows held out, e.g. 0.25")
    parser.add_argument("--seed", type=int, required=True, help="random seed of the split")
    args = parser.parse_args(argv)
    if not 0.0 < args.test_size < 1.0:
        parser.error(f"--test-size must be between 0 and 1, got {args.test_size}")

    try:
        X, y, features = read_xy(args.raw)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=args.test_size, random_state=args.seed, stratify=y
        )
        write_xy(args.train, X_train, y_train, features)
        write_xy(args.test, X_test, y_test, features)
    except (OSError, ValueError) as exc:
        print(f"prepare.py: error: {exc}", file=sys.stderr)
        return 1

    print(f"prepare: {len(y)} rows -> {len(y_train)} train ({args.train}), {len(y_test)} test ({args.test})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
