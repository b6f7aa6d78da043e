"""Training: ``netspec train`` and ``netspec.train(...)``.

One file per concern: ``config`` (the ``train:`` section), ``data``, ``losses``, ``optim``, ``metrics``,
``checkpoint``, ``progress``, ``loop`` (the driver) and ``methods/`` (one small loop per training method).
Only ``config`` is imported by the spec loader; everything that needs torch is imported on first use.
"""
