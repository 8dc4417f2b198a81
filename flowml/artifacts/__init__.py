"""Artifact repositories: where a run's files live. ``local`` is a folder on this machine;
the server issue adds the HTTP proxy. :func:`repository` picks one by URI."""

from __future__ import annotations

from flowml.errors import TrackingError


def repository(uri: str):
    """The artifact repository for a run's ``artifact_uri``.

    Raises:
        TrackingError: for a scheme this flowml cannot read or write (``s3://`` ...).
    """
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme not in ("", "file"):
        raise TrackingError(f"artifact location '{uri}': the '{scheme}' scheme is not supported "
                            "(local folders and file:// URIs are)")
    from flowml.artifacts.local import LocalArtifactRepository

    return LocalArtifactRepository(uri)
