"""Read files into titled, sectioned text with their access labels.

Formats: Markdown (``.md``, ``.markdown``, with optional YAML front matter), plain text
(``.txt``), HTML (``.html``, ``.htm``: scripts, styles, navigation and footers dropped) and
PDF (``.pdf``, text layer only, one section per page unless headings are found).

Access labels, the most specific source winning:

1. the file's own front matter (``labels: [finance-restricted]``, ``department:``,
   ``owner:``) or, for HTML, ``<meta name="labels" content="a, b">``;
2. an ``_access.yaml`` ``files:`` entry naming the file, in its folder;
3. the nearest ``_access.yaml`` ``labels:`` in its folder or a parent folder, up to the
   folder the ingestion started from;
4. the labels given to the ingestion (``controlroom ingest --label``);
5. ``internal`` (readable by every employee under the shipped policies).

A chunk carries the full label set of its file; a user sees it only if the policies let
them read every one of those labels.
"""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from controlroom.errors import DocumentError

ACCESS_FILE = "_access.yaml"
DEFAULT_LABEL = "internal"
LABEL_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
_LABEL = re.compile(LABEL_PATTERN)
SUFFIXES = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|\Z)", re.S)
_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_MAX_BYTES = 50 * 1024 * 1024
# an all-capitals line of words (no digits, so codes and IBANs stay text) is a heading
_CAPS_HEADING = re.compile(r"[A-Z]{4,}|[A-Z][A-Z&/'()-]*(?: [A-Z&/'()-]+)+")


def check_label(label: str) -> str:
    if not isinstance(label, str) or not _LABEL.match(label):
        raise ValueError(
            f"{label!r} is not a valid access label (lower-case letters, digits, '-', '_', "
            "'.'; at most 64 characters)"
        )
    return label


class Access(BaseModel):
    """Who a document is for: labels (which decide access), department and owner (shown)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: tuple[str, ...] | None = None
    department: str | None = None
    owner: str | None = None

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise ValueError("labels must be a list of strings")
        return tuple(sorted({check_label(v) for v in value}))

    def over(self, base: Access) -> Access:
        """This access, with what it leaves out taken from ``base``."""
        return Access(
            labels=self.labels if self.labels is not None else base.labels,
            department=self.department if self.department is not None else base.department,
            owner=self.owner if self.owner is not None else base.owner,
        )


class _AccessFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    labels: list[str] | str | None = None
    department: str | None = None
    owner: str | None = None
    files: dict[str, Access] = Field(default_factory=dict)

    def folder_access(self) -> Access:
        return Access.model_validate(
            {"labels": self.labels, "department": self.department, "owner": self.owner}
        )


class Section(BaseModel):
    """A run of text under one heading path (``("Leave", "Parental leave")``)."""

    headings: tuple[str, ...]
    text: str


class SourceDocument(BaseModel):
    """One file, read: its key, title, sections, access and content hash."""

    source: str  # the file's key in the store: see source_key()
    path: Path
    format: str
    title: str
    sections: list[Section]
    access: Access
    sha256: str

    @property
    def labels(self) -> tuple[str, ...]:
        return self.access.labels or (DEFAULT_LABEL,)


def _read_access_file(path: Path) -> _AccessFile:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return _AccessFile.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise DocumentError(
            f"{path}: not a valid access file ({_short(exc)}). It holds `labels: [..]`, "
            "optional `department:` and `owner:`, and `files: {name: {labels: [..]}}`."
        ) from None


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"`{'.'.join(str(p) for p in e['loc'])}`: {e['msg']}" for e in exc.errors()
        )
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def inherited_access(path: Path, root: Path, base: Access) -> Access:
    """The access ``_access.yaml`` files give ``path`` (without its own front matter)."""
    folders: list[Path] = []
    folder = path.parent
    root = root if root.is_dir() else root.parent
    while True:
        folders.append(folder)
        if folder in (root, folder.parent) or root not in folder.parents:
            break
        folder = folder.parent
    access = base
    for current in reversed(folders):  # outermost first, nearest last
        spec = current / ACCESS_FILE
        if spec.is_file():
            parsed = _read_access_file(spec)
            access = parsed.folder_access().over(access)
            if current == path.parent and path.name in parsed.files:
                access = parsed.files[path.name].over(access)
    return access


def _front_matter(text: str, path: Path) -> tuple[dict[str, Any], str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        data = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise DocumentError(f"{path}: the front matter is not valid YAML ({exc}).") from None
    if not isinstance(data, dict):
        raise DocumentError(f"{path}: the front matter must be a mapping of keys to values.")
    return data, text[match.end() :]


def _own_access(meta: dict[str, Any], path: Path) -> Access:
    fields = {k: meta[k] for k in ("labels", "department", "owner") if k in meta}
    try:
        return Access.model_validate(fields)
    except ValidationError as exc:
        raise DocumentError(
            f"{path}: bad access labels in the front matter ({_short(exc)})."
        ) from None


def _markdown_sections(body: str, title: str | None) -> tuple[str | None, list[Section]]:
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    lines: list[str] = []
    in_code = False

    def flush() -> None:
        text = "\n".join(lines).strip()
        if text:
            sections.append(Section(headings=tuple(h for _, h in stack), text=text))
        lines.clear()

    for line in body.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
        match = None if in_code else _MD_HEADING.match(line)
        if match is None:
            lines.append(line)
            continue
        flush()
        level, heading = len(match.group(1)), match.group(2).strip()
        first = level == 1 and not sections and not stack
        if first and (title is None or title.strip().lower() == heading.lower()):
            title = title or heading
            continue
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, heading))
    flush()
    return title, sections


def _text_sections(body: str) -> list[Section]:
    """Plain text: underlined (=== / ---) or ALL-CAPS short lines count as headings."""
    raw = body.splitlines()
    marked: list[str] = []
    index = 0
    while index < len(raw):
        line = raw[index]
        nxt = raw[index + 1] if index + 1 < len(raw) else ""
        if line.strip() and re.fullmatch(r"\s*(=+|-+)\s*", nxt) and len(nxt.strip()) >= 3:
            marked.append(("# " if nxt.strip()[0] == "=" else "## ") + line.strip())
            index += 2
            continue
        stripped = line.strip()
        if 4 <= len(stripped) <= 70 and _CAPS_HEADING.fullmatch(stripped):
            marked.append("## " + stripped.title())
        else:
            marked.append(line)
        index += 1
    _, sections = _markdown_sections("\n".join(marked), "")
    return sections


class _HTMLText(HTMLParser):
    SKIP: ClassVar[set[str]] = {
        "script",
        "style",
        "nav",
        "footer",
        "header",
        "noscript",
        "template",
        "svg",
        "form",
    }
    BLOCK: ClassVar[set[str]] = {
        "p",
        "div",
        "li",
        "tr",
        "br",
        "section",
        "article",
        "table",
        "ul",
        "ol",
        "pre",
        "blockquote",
        "dd",
        "dt",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skip_depth = 0
        self.title: str | None = None
        self.meta: dict[str, str] = {}
        self.parts: list[str] = []
        self._in_title = False
        self._heading: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skip_depth += 1
        elif tag == "title":
            self._in_title = True
        elif tag == "meta":
            values = dict(attrs)
            name, content = values.get("name"), values.get("content")
            if name and content is not None:
                self.meta[name.lower()] = content
        elif re.fullmatch(r"h[1-6]", tag) and not self.skip_depth:
            self._heading = int(tag[1])
            self.parts.append("\n\n" + "#" * self._heading + " ")
        elif tag in self.BLOCK and not self.skip_depth:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.skip_depth:
            self.skip_depth -= 1
        elif tag == "title":
            self._in_title = False
        elif re.fullmatch(r"h[1-6]", tag) and self._heading is not None:
            self._heading = None
            self.parts.append("\n\n")
        elif tag in self.BLOCK and not self.skip_depth:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title = (self.title or "") + data.strip()
        elif not self.skip_depth:
            self.parts.append(re.sub(r"\s+", " ", data) if self._heading else data)


def _html(text: str, path: Path) -> tuple[str | None, dict[str, Any], str]:
    parser = _HTMLText()
    try:
        parser.feed(text)
        parser.close()
    except Exception as exc:  # html.parser is lenient; anything else is a broken file
        raise DocumentError(f"{path}: the HTML cannot be read ({exc}).") from None
    meta: dict[str, Any] = {}
    for key in ("labels", "department", "owner"):
        if key in parser.meta:
            meta[key] = parser.meta[key]
    body = re.sub(r"\n[ \t]+", "\n", "".join(parser.parts))
    return parser.title, meta, re.sub(r"\n{3,}", "\n\n", body)


def _pdf(path: Path) -> tuple[str | None, list[Section]]:
    try:
        import pypdf
    except ImportError:
        raise DocumentError(
            f"{path}: reading PDF files needs pypdf; reinstall controlroom (it depends on pypdf)."
        ) from None
    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted:
            raise DocumentError(f"{path}: the PDF is encrypted; decrypt it and ingest it again.")
        title = None
        if reader.metadata is not None and reader.metadata.title:
            title = str(reader.metadata.title).strip() or None
        sections: list[Section] = []
        for number, page in enumerate(reader.pages, start=1):
            text = (page.extract_text() or "").strip()
            if text:
                page_title, found = _pdf_page_sections(text, number)
                title = title or page_title
                sections.extend(found)
    except DocumentError:
        raise
    except Exception as exc:
        raise DocumentError(f"{path}: the PDF cannot be read ({_short(exc)}).") from None
    if not sections:
        raise DocumentError(
            f"{path}: the PDF has no text layer (scanned?). Run OCR on it first, then ingest it."
        )
    return title, sections


def _pdf_page_sections(text: str, number: int) -> tuple[str | None, list[Section]]:
    sections = _text_sections(text)
    page = f"page {number}"
    first = text.strip().splitlines()[0].strip() if text.strip() else None
    return first, [
        Section(headings=(*s.headings, page) if s.headings else (page,), text=s.text)
        for s in sections
    ]


def source_key(path: Path, root: Path) -> str:
    """A file's key in the store: the ingested folder's name and the path below it
    (``corpus/hr/leave.md``), so that ids and citations do not depend on where a checkout
    lives; a file given on its own is keyed by its folder's name and its file name."""
    base = root if root.is_dir() else root.parent
    try:
        rel = path.relative_to(base)
    except ValueError:
        return path.as_posix()
    return f"{base.name or 'root'}/{rel.as_posix()}"


def read_document(
    path: Path, *, root: Path, base: Access | None = None, source: str | None = None
) -> SourceDocument:
    """Read ``path`` (under the ingestion folder ``root``) with its access labels.

    Any problem is a :class:`DocumentError` naming the file; nothing is partly read.
    """
    path = path.resolve()
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DocumentError(
            f"{path}: {path.suffix or 'files without a suffix'} is not a supported format "
            f"({', '.join(sorted(SUFFIXES))})."
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    if len(data) > _MAX_BYTES:
        raise DocumentError(f"{path}: larger than {_MAX_BYTES >> 20} MiB; split it first.")
    digest = hashlib.sha256(data).hexdigest()
    inherited = inherited_access(path, root.resolve(), base or Access())
    meta: dict[str, Any] = {}
    title: str | None = None
    if kind == "pdf":
        title, sections = _pdf(path)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DocumentError(
                f"{path}: not UTF-8 text (byte {exc.start}); convert it to UTF-8 first."
            ) from None
        if "\x00" in text:
            raise DocumentError(f"{path}: contains NUL bytes; it looks like a binary file.")
        if kind == "markdown":
            meta, body = _front_matter(text, path)
            title, sections = _markdown_sections(body, _str(meta.get("title")))
        elif kind == "html":
            title, meta, body = _html(text, path)
            title, sections = _markdown_sections(body, title)
        else:
            sections = _text_sections(text)
    access = _own_access(meta, path).over(inherited)
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise DocumentError(f"{path}: has no text to ingest.")
    return SourceDocument(
        source=source or source_key(path, root.resolve()),
        path=path,
        format=kind,
        title=(title or path.stem.replace("-", " ").replace("_", " ")).strip(),
        sections=sections,
        access=access,
        sha256=digest,
    )


def _str(value: Any) -> str | None:
    return str(value).strip() if value is not None and str(value).strip() else None
