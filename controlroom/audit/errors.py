"""Errors of the audit trail: a branch of the :mod:`controlroom.errors` tree.

::

    ControlroomError
    └── AuditError                  the audit log cannot be written, read or trusted
        ├── AuditKeyError           no signing / verification key, or an unusable one
        └── ReplayError             a run cannot be replayed from its log
"""

from __future__ import annotations

from controlroom.errors import ControlroomError


class AuditError(ControlroomError):
    title = "Audit error"


class AuditKeyError(AuditError):
    title = "Audit key error"


class ReplayError(AuditError):
    title = "Cannot replay"
