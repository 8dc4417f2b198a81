"""Which python invocations a command makes, with the shell state that decides their imports."""

from __future__ import annotations

import pytest

from flowml.cache.codedeps import python_entries


@pytest.mark.parametrize("command, entries", [
    ("python train.py --alpha 1", [("script", "train.py", ".", "")]),
    (["python3", "-u", "train.py"], [("script", "train.py", ".", "")]),
    ("python -m pkg.mod", [("module", "pkg.mod", ".", "")]),
    ("cd tools && python train.py", [("script", "train.py", "tools", "")]),
    ("(cd sub && python s.py) && python t.py", [("script", "s.py", "sub", ""), ("script", "t.py", ".", "")]),
    ("cd - && python q.py", [("script", "q.py", ".", "")]),
    ("PYTHONPATH=lib python train.py", [("script", "train.py", ".", "lib")]),
    ("export PYTHONPATH=lib; python -m a.b", [("module", "a.b", ".", "lib")]),
    ("FOO=1 nice python -W ignore x.py | tee log", [("script", "x.py", ".", "")]),
    ('python -c "import x"', []),
    ("echo python", []),
])
def test_python_entries_follow_the_shell(command, entries):
    assert python_entries(command) == entries
