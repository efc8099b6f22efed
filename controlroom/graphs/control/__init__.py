"""Control: driving runs from outside the graph, for the SDK, the CLI and the TUI.

The :class:`~.runner.Runner` (start, resume, approve, reject, stop, list), what it returns
(:mod:`.run_result`), supervision (breakpoints, stop requests, progress events:
:mod:`.supervision`), a person's decision on a pending item (:mod:`.decisions`),
time travel (:mod:`.time_travel`), replay from the record (:mod:`.replay`) and
``controlroom doctor`` (:mod:`.doctor`).

May import every other ``graphs`` subpackage. Nothing in ``graphs`` imports ``control``.
"""
