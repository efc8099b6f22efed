"""The ``controlroom`` command.

Exit codes (stable, for scripts):

====  ==========================================================
 0    success; for run/resume/step/approve/reject: the run completed
 1    the run failed (its error is shown; ``resume`` retries it)
 2    usage or configuration error (bad flag, unknown user, bad workflow file, ...)
 3    the run is waiting for approval
 4    the run is paused (stepping) or was interrupted; ``resume`` continues it
 5    the run completed, but one or more of its tool calls were denied by the gate,
      rejected by a person or refused for invalid arguments (never executed); ``show RUN``
      lists them with the reasons
====  ==========================================================
"""

from controlroom.cli.app import app, main

__all__ = ["app", "main"]
