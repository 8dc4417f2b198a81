"""What uvicorn imports in each worker process: the application, built from the
configuration ``flowml server`` put in ``FLOWML_SERVER_CONFIG`` (JSON), since several
workers cannot share one Python object."""

from __future__ import annotations

import json
import os

CONFIG_ENV = "FLOWML_SERVER_CONFIG"


def app():
    from flowml.server.app import create_app
    from flowml.server.config import ServerConfig

    return create_app(ServerConfig.from_json(json.loads(os.environ[CONFIG_ENV])))
