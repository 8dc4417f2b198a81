"""Artifact repositories: where a run's files live. ``local`` is a folder on this machine;
the server issue adds the HTTP proxy. :func:`repository` picks one by URI."""

from __future__ import annotations


def repository(uri: str):
    """The artifact repository for a run's ``artifact_uri``."""
    from flowml.artifacts.local import LocalArtifactRepository

    return LocalArtifactRepository(uri)
