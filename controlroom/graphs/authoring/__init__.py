"""Authoring: what a workflow *is*, before anything runs.

The workflow spec (:mod:`.spec`), its YAML file form (:mod:`.workflow_file`) and Python
builder (:mod:`.builder`), validation (:mod:`.validate`), branch conditions
(:mod:`.conditions`), the references to user code a workflow names (tools, prompts, Python
workflow files: :mod:`.user_code`, :mod:`.tool_refs`, :mod:`.prompt_refs`), and the
:class:`~.workflow.Workflow` that binds a spec to its tools and gate.

May import: ``controlroom.config``, ``errors``, ``identity``, ``agents``, ``tools``, ``audit``,
``retrieval``. Never ``graphs.runtime``, ``graphs.storage`` or ``graphs.control``: a
workflow can be loaded and checked without a store, a graph or a runner.
"""
