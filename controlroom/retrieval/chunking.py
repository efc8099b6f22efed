"""Split documents into chunks that keep their headings.

A chunk never spans two sections; inside a section, paragraphs are packed up to
``size`` characters, and a paragraph longer than that is split at sentence ends (at word
boundaries as a last resort). Each chunk knows its document title and heading path,
which are embedded with its text so that "Parental leave > Eligibility" is found by a
question about parental leave even when the paragraph itself never says so.
"""

from __future__ import annotations

import hashlib
import re

from pydantic import BaseModel

from controlroom.retrieval.documents import SourceDocument

DEFAULT_SIZE = 900
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


class Chunk(BaseModel):
    """A piece of a document, as stored and as cited."""

    id: str
    source: str
    title: str
    headings: tuple[str, ...]
    index: int
    text: str

    @property
    def heading_path(self) -> str:
        return " > ".join(self.headings)

    def embedding_text(self) -> str:
        head = " > ".join((self.title, *self.headings))
        return f"{head}\n{self.text}"


def _pieces(text: str, size: int) -> list[str]:
    """Paragraphs no longer than ``size`` (long ones cut at sentences, then words)."""
    out: list[str] = []
    for raw in re.split(r"\n\s*\n", text):
        paragraph = raw.strip()
        if not paragraph:
            continue
        if len(paragraph) <= size:
            out.append(paragraph)
            continue
        for sentence in _SENTENCE_END.split(paragraph):
            rest = sentence
            while len(rest) > size:
                cut = rest.rfind(" ", 0, size)
                cut = cut if cut > size // 2 else size
                out.append(rest[:cut].strip())
                rest = rest[cut:].strip()
            if rest:
                out.append(rest)
    return out


def _pack(pieces: list[str], size: int) -> list[str]:
    chunks: list[str] = []
    current: list[str] = []
    length = 0
    for piece in pieces:
        extra = len(piece) + (2 if current else 0)
        if current and length + extra > size:
            chunks.append("\n\n".join(current))
            current, length = [], 0
            extra = len(piece)
        current.append(piece)
        length += extra
    if current:
        chunks.append("\n\n".join(current))
    # a last scrap much shorter than the rest joins its neighbour when it fits
    if (
        len(chunks) >= 2
        and len(chunks[-1]) < size // 4
        and len(chunks[-2]) + len(chunks[-1]) <= size * 1.25
    ):
        chunks[-2:] = [chunks[-2] + "\n\n" + chunks[-1]]
    return chunks


def chunk_id(source: str, version: str, index: int) -> str:
    """A short id, unique per source, version and position (what answers cite)."""
    return "c" + hashlib.sha256(f"{source}\x00{version}\x00{index}".encode()).hexdigest()[:12]


def chunk_document(doc: SourceDocument, version: str, *, size: int = DEFAULT_SIZE) -> list[Chunk]:
    chunks: list[Chunk] = []
    for section in doc.sections:
        for text in _pack(_pieces(section.text, size), size):
            index = len(chunks)
            chunks.append(
                Chunk(
                    id=chunk_id(doc.source, version, index),
                    source=doc.source,
                    title=doc.title,
                    headings=section.headings,
                    index=index,
                    text=text,
                )
            )
    return chunks
