"""Helpers shared by the quickstart scripts.

The steps import this package, so flowml counts it as part of their code:
edit ``wineflow/io.py`` and every step that imports it reruns.
"""
