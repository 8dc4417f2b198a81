"""flowml: ML pipelines that skip what did not change.

Importing ``flowml`` stays cheap on purpose: the CLI's start-up time is a feature,
so every heavy dependency is imported inside the function that needs it.
"""

__version__ = "0.1.0"
