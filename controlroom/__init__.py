"""controlroom: supervised agentic task automation.

The public SDK. Start runs of graph-defined workflows for a user, pause them for human
approval, decide approvals from any process, and resume them::

    from controlroom import Runner

    with Runner(home=".controlroom") as runner:
        result = runner.start("examples/invoice-payment", user="alice", input="Pay INV-1001")
        for item in result.pending:
            runner.approve(result.run_id, item.approval_id, by="bob")
"""

from controlroom.audit import (
    AuditError,
    AuditKeyError,
    ReplayError,
    ReplayReport,
    VerifyReport,
    verify_log,
)
from controlroom.config import Settings
from controlroom.errors import (
    ApprovalDecidedError,
    ApprovalError,
    ApprovalNotFoundError,
    ConfigError,
    ControlroomError,
    DatasetError,
    DirectoryError,
    DocumentError,
    DocumentStoreError,
    EmbedderUnavailableError,
    IdentityError,
    ModelCallError,
    ModelUnavailableError,
    PolicyError,
    PromptNotFoundError,
    RetrievalError,
    RunBusyError,
    RunError,
    RunNotFoundError,
    RunStateError,
    ScriptError,
    StateError,
    ToolArgumentsError,
    ToolError,
    ToolExecutionError,
    UnknownToolError,
    UnknownUserError,
    WorkflowDefinitionError,
    WorkflowError,
    WorkflowFileError,
)
from controlroom.graphs.authoring.builder import GraphBuilder
from controlroom.graphs.authoring.spec import (
    END,
    AnswerStep,
    ApprovalStep,
    BranchStep,
    ChooseStep,
    ModelStep,
    ReasonStep,
    RetrieveStep,
    ToolsStep,
    WorkflowSpec,
)
from controlroom.graphs.authoring.workflow import Workflow, load_workflow
from controlroom.graphs.control.run_result import RunResult
from controlroom.graphs.control.runner import Runner
from controlroom.graphs.control.supervision import Breakpoints, RunEvent, StateEdits
from controlroom.graphs.runtime.run_state import RunState
from controlroom.graphs.storage.checkpoints import CheckpointInfo
from controlroom.graphs.storage.records import (
    Approval,
    ApprovalStatus,
    Refusal,
    RefusalStatus,
    RunRecord,
    RunStatus,
)
from controlroom.identity import Directory, Principal
from controlroom.tools.gate import Decision, DeclaredGate, Gate, Verdict
from controlroom.tools.langchain import from_langchain_tool
from controlroom.tools.policy import PolicyGate
from controlroom.tools.spec import Effect, Tool, ToolContext, tool

__version__ = "0.1.0"

__all__ = [
    "END",
    "AnswerStep",
    "Approval",
    "ApprovalDecidedError",
    "ApprovalError",
    "ApprovalNotFoundError",
    "ApprovalStatus",
    "ApprovalStep",
    "AuditError",
    "AuditKeyError",
    "BranchStep",
    "Breakpoints",
    "CheckpointInfo",
    "ChooseStep",
    "ConfigError",
    "ControlroomError",
    "DatasetError",
    "Decision",
    "DeclaredGate",
    "Directory",
    "DirectoryError",
    "DocumentError",
    "DocumentStoreError",
    "Effect",
    "EmbedderUnavailableError",
    "Gate",
    "GraphBuilder",
    "IdentityError",
    "ModelCallError",
    "ModelStep",
    "ModelUnavailableError",
    "PolicyError",
    "PolicyGate",
    "Principal",
    "PromptNotFoundError",
    "ReasonStep",
    "Refusal",
    "RefusalStatus",
    "ReplayError",
    "ReplayReport",
    "RetrievalError",
    "RetrieveStep",
    "RunBusyError",
    "RunError",
    "RunEvent",
    "RunNotFoundError",
    "RunRecord",
    "RunResult",
    "RunState",
    "RunStateError",
    "RunStatus",
    "Runner",
    "ScriptError",
    "Settings",
    "StateEdits",
    "StateError",
    "Tool",
    "ToolArgumentsError",
    "ToolContext",
    "ToolError",
    "ToolExecutionError",
    "ToolsStep",
    "UnknownToolError",
    "UnknownUserError",
    "Verdict",
    "VerifyReport",
    "Workflow",
    "WorkflowDefinitionError",
    "WorkflowError",
    "WorkflowFileError",
    "WorkflowSpec",
    "__version__",
    "from_langchain_tool",
    "load_workflow",
    "tool",
    "verify_log",
]
