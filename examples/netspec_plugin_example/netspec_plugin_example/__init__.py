"""An example netspec plugin package.

- ``netspec_plugin_example.ops``: the ops (``Op`` subclasses), registered through the ``netspec.ops`` entry points in
  pyproject.toml; netspec imports this module when its op registry is first needed.
- ``netspec_plugin_example.modules``: torch modules that generated ``model.py`` files import (torch only: this package's
  ``__init__`` imports nothing, so a model.py using ``swiglu`` runs where netspec is not installed).
"""
