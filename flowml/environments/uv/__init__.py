"""Python environments made with uv: the ``uv`` binary (:mod:`.tool`), pip's index settings
handed to it (:mod:`.pipconfig`), requirements resolved into a lock (:mod:`.resolve`) and the
shared folder of virtual environments keyed by that lock (:mod:`.store`)."""
