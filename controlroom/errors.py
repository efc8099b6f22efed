"""One error tree for controlroom.

Every error a user can meet carries a short ``title`` and a ``message`` that says what
happened and what to do about it. The CLI prints them as one paragraph (no traceback),
the TUI shows them in a modal, and the SDK raises them.

::

    ControlroomError
    ├── ConfigError                 bad settings, missing project folder or file
    │   ├── ModelUnavailableError   a model spec that cannot be served here
    │   ├── PolicyError             policies or their schema that do not parse or validate
    │   ├── DatasetError            a malformed evaluation dataset (``controlroom eval``)
    │   └── StateError              a state file of the project folder that cannot be used:
    │                               corrupt, cut short, emptied, or from a newer version
    ├── IdentityError
    │   ├── DirectoryError          the user directory file is missing or malformed
    │   └── UnknownUserError        a user id that the directory does not list
    ├── WorkflowError
    │   ├── WorkflowFileError       a malformed workflow file (names file, line, key)
    │   ├── WorkflowDefinitionError an inconsistent graph (unknown step, no path to end)
    │   └── PromptNotFoundError     a library prompt id or version that does not exist
    ├── ToolError
    │   ├── UnknownToolError        a tool name that the workflow does not provide
    │   ├── ToolArgumentsError      arguments that do not match the tool's schema
    │   └── ToolExecutionError      a tool could not do what was asked (no such record...)
    ├── RunError
    │   ├── RunNotFoundError        no run with that id in this project folder
    │   ├── RunBusyError            another process is executing the run right now
    │   └── RunStateError           the run is not in a state that allows the request
    ├── ApprovalError
    │   ├── ApprovalNotFoundError   no pending item with that id
    │   └── ApprovalDecidedError    the item was already approved or rejected
    ├── ModelCallError              a model refused a request, or no model of a chain answered
    ├── ScriptError                 a scripted chat model ran out or diverged
    └── RetrievalError
        ├── EmbedderUnavailableError  the offline embedder's packages are missing or altered
        ├── DocumentStoreError        the Chroma store cannot be opened or reached
        └── DocumentError             a file that cannot be ingested (skipped, never half-added)
"""

from __future__ import annotations


class ControlroomError(Exception):
    """Base of every error controlroom raises on purpose."""

    title: str = "controlroom error"

    def __init__(self, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title

    def __str__(self) -> str:
        return self.message


class ConfigError(ControlroomError):
    title = "Configuration error"


class ModelUnavailableError(ConfigError):
    title = "Model not available"


class PolicyError(ConfigError):
    title = "Policy error"


class DatasetError(ConfigError):
    title = "Malformed evaluation dataset"


class StateError(ConfigError):
    title = "Project state unreadable"


class IdentityError(ControlroomError):
    title = "Identity error"


class DirectoryError(IdentityError):
    title = "User directory error"


class UnknownUserError(IdentityError):
    title = "Unknown user"


class WorkflowError(ControlroomError):
    title = "Workflow error"


class WorkflowFileError(WorkflowError):
    title = "Malformed workflow file"


class WorkflowDefinitionError(WorkflowError):
    title = "Invalid workflow"


class PromptNotFoundError(WorkflowError):
    title = "Prompt not found"


class ToolError(ControlroomError):
    title = "Tool error"


class UnknownToolError(ToolError):
    title = "Unknown tool"


class ToolArgumentsError(ToolError):
    title = "Invalid tool arguments"


class ToolExecutionError(ToolError):
    title = "Tool failed"


class RunError(ControlroomError):
    title = "Run error"


class RunNotFoundError(RunError):
    title = "Run not found"


class RunBusyError(RunError):
    title = "Run is busy"


class RunStateError(RunError):
    title = "Run cannot do that now"


class ApprovalError(ControlroomError):
    title = "Approval error"


class ApprovalNotFoundError(ApprovalError):
    title = "Approval not found"


class ApprovalDecidedError(ApprovalError):
    title = "Approval already decided"


class ModelCallError(ControlroomError):
    title = "Model call failed"


class ScriptError(ControlroomError):
    title = "Scripted model error"


class RetrievalError(ControlroomError):
    title = "Retrieval error"


class EmbedderUnavailableError(RetrievalError):
    title = "Embedder not available"


class DocumentStoreError(RetrievalError):
    title = "Document store unavailable"


class DocumentError(RetrievalError):
    title = "Document not ingested"
