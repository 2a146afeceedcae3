"""vhdiag: PostgreSQL operations diagnostics as pandas frames and papermill reports."""
from .errors import CapabilityError, ConfigError, ConnectError, VhdiagError

__version__ = "0.1.0"
__all__ = ["connect", "Target", "History", "load_metrics", "VhdiagError", "ConfigError", "ConnectError", "CapabilityError"]


def __getattr__(name):  # lazy: importing vhdiag should not pull in SQLAlchemy for `--help`
    if name in ("connect", "Target"):
        from . import target
        return getattr(target, name)
    if name == "History":
        from .history import History
        return History
    if name == "load_metrics":
        from .metrics import load_metrics
        return load_metrics
    raise AttributeError(name)
