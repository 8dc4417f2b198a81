"""Run names for runs nobody named: two words and a number, easy to say and to tell apart."""

from __future__ import annotations

import random

_ADJECTIVES = ("amber", "bold", "brisk", "calm", "clever", "crisp", "deft", "eager", "fair", "fleet", "gentle",
               "glad", "keen", "lucid", "merry", "nimble", "noble", "placid", "quick", "quiet", "rapid", "sly",
               "smart", "steady", "swift", "tidy", "vivid", "warm", "wise", "zesty")
_NOUNS = ("badger", "bison", "crane", "dolphin", "eagle", "falcon", "ferret", "finch", "fox", "gecko", "heron",
          "ibis", "jay", "koala", "lark", "lemur", "lynx", "marten", "newt", "orca", "otter", "owl", "panda",
          "quail", "raven", "robin", "seal", "stoat", "swan", "wren")


def random_run_name() -> str:
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(100, 999)}"
