"""``python -m flowml`` runs the CLI."""

from flowml.cli import main

main()
