"""flowml-docker: model images and container deployments through Docker's API.

Found by flowml through entry points (``flowml.image_builders`` and ``flowml.deployments``,
both named ``docker``); flowml never imports this package by name.
"""
