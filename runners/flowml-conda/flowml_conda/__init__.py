"""flowml plugin: the ``conda`` environment kind, made without a conda binary.

``environment.yml`` is parsed by conda-lock's own parser (:mod:`.envfile`), solved with rattler
(:mod:`.solve`), and locked in conda-lock's format (:mod:`.lockfile`); the lock's packages are
installed by rattler into a prefix of flowml's shared environment folder, keyed by the lock's
digest (:mod:`.environment`, :mod:`.resolve`).
"""
