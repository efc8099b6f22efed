"""Storage: what every process of a project must share, and nothing else.

The run store (runs, approvals, the effect ledger, refusals, batches: :mod:`.run_store`,
its record types in :mod:`.records`), the checkpoint backends that own LangGraph's
checkpointer and every checkpoint operation (:mod:`.backend` the interface,
:mod:`.sqlite` and :mod:`.postgres` the two implementations, :mod:`.backends` to choose
one from the settings), per-run locks (:mod:`.locks`) and the project's SQLite state files
(:mod:`.state_files`: owner-only, refused clearly when damaged).

May import: ``controlroom.config``, ``errors``, ``faults``, ``audit`` (records only).
Never ``graphs.authoring``, ``graphs.runtime`` or ``graphs.control``: storage knows rows
and checkpoints, not workflows.
"""
