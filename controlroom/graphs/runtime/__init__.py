"""Runtime: what executes *inside* LangGraph while a run is driven.

The compiled graph (:mod:`.compile`), its nodes (model, tool, reasoning, retrieval steps:
:mod:`.nodes`, :mod:`.reasoning_nodes`, :mod:`.retrieval_nodes`), the state a run carries
from step to step and the context it runs in (:mod:`.run_state`), and what the nodes tell
the audit log (:mod:`.audit_hooks`).

May import: ``graphs.authoring`` and ``graphs.storage`` (the nodes write the effect ledger
and approvals), plus everything authoring may. Never ``graphs.control``: a node does not
know which runner, process or command drives it.
"""
