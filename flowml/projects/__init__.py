"""Project sources: what ``flowml run TARGET`` runs, wherever TARGET points.

TARGET is a pipeline file, a folder holding ``pipeline.yaml`` or an MLflow ``MLproject`` file,
or a git repository (``file://``, ``https://``, ``ssh://`` or ``user@host:path`` URIs, or a
local repository given with ``--version``), optionally followed by ``#subdir``. A git
repository is fetched into a cache and checked out at the commit asked for
(:mod:`flowml.projects.git`); an MLproject becomes a one-step pipeline of the entry point
asked for (:mod:`flowml.projects.mlproject`). :mod:`flowml.projects.source` decides which.

Nothing is imported here: ``flowml run pipeline.yaml`` pays only for the few ``stat`` calls
that tell a pipeline file from the rest.
"""
