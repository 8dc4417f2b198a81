"""Python environments made with uv: the ``uv`` binary (:mod:`.tool`), pip's index settings
handed to it (:mod:`.pipconfig`), requirements resolved into a lock (:mod:`.resolve`) and the
virtual environment made from that lock (:mod:`.venv`), kept in the shared folder of
:mod:`flowml.environments.store`."""
