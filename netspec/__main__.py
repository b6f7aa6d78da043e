from .cli import _script

_script()
