"""Reading files into sections with access labels, and chunking that keeps headings."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlroom.errors import DocumentError
from controlroom.retrieval import Access, chunk_document, read_document
from controlroom.retrieval.chunking import DEFAULT_SIZE
from tests.retrieval_support import CORPUS


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


MD = """---
title: Parental leave
labels: [hr-confidential]
department: hr
owner: people@example.com
---
# Parental leave

Intro paragraph.

## Eligibility

You are eligible after 26 weeks.

### Part-time staff

Pro rata.
"""


def test_markdown_front_matter_gives_title_labels_and_heading_paths(tmp_path: Path) -> None:
    doc = read_document(write(tmp_path / "leave.md", MD), root=tmp_path)
    assert doc.title == "Parental leave"
    assert doc.labels == ("hr-confidential",)
    assert doc.access.department == "hr" and doc.access.owner == "people@example.com"
    assert [s.headings for s in doc.sections] == [
        (),
        ("Eligibility",),
        ("Eligibility", "Part-time staff"),
    ]
    assert doc.sections[1].text == "You are eligible after 26 weeks."


def test_label_precedence_front_matter_then_files_entry_then_folder_then_default(
    tmp_path: Path,
) -> None:
    root = tmp_path / "docs"
    write(root / "_access.yaml", "labels: [internal]\ndepartment: it\n")
    write(
        root / "fin" / "_access.yaml",
        "labels: [finance-restricted]\nfiles:\n  special.txt: {labels: [exec-only]}\n",
    )
    plain = write(root / "fin" / "plain.txt", "Budget text.\n")
    special = write(root / "fin" / "special.txt", "Board text.\n")
    own = write(root / "fin" / "own.md", "---\nlabels: [hr-confidential]\n---\nText.\n")
    top = write(root / "top.md", "Top text.\n")
    assert read_document(plain, root=root).labels == ("finance-restricted",)
    assert read_document(plain, root=root).access.department == "it"  # inherited
    assert read_document(special, root=root).labels == ("exec-only",)
    assert read_document(own, root=root).labels == ("hr-confidential",)
    assert read_document(top, root=root).labels == ("internal",)
    bare = write(tmp_path / "bare" / "x.md", "Nothing says.\n")
    assert read_document(bare, root=bare.parent).labels == ("internal",)  # the default
    given = Access(labels=["it-admin"])
    assert read_document(bare, root=bare.parent, base=given).labels == ("it-admin",)


def test_access_files_above_the_ingested_folder_do_not_apply(tmp_path: Path) -> None:
    write(tmp_path / "_access.yaml", "labels: [exec-only]\n")
    doc = write(tmp_path / "sub" / "a.md", "Text.\n")
    assert read_document(doc, root=tmp_path / "sub").labels == ("internal",)


def test_html_drops_scripts_navigation_and_footer_and_reads_meta_labels(tmp_path: Path) -> None:
    page = write(
        tmp_path / "p.html",
        "<html><head><title>Pay FAQ</title><meta name='labels' content='hr-confidential, "
        "internal'><script>var secret = 'x';</script></head><body><nav>Home | About</nav>"
        "<h1>Pay FAQ</h1><p>Bands are <b>reviewed</b> yearly.</p><h2>Bonus</h2><p>Paid in "
        "March.</p><footer>© Example</footer></body></html>",
    )
    doc = read_document(page, root=tmp_path)
    text = " ".join(s.text for s in doc.sections)
    assert doc.title == "Pay FAQ"
    assert doc.labels == ("hr-confidential", "internal")
    assert "Bands are reviewed yearly." in text and "Paid in March." in text
    assert "secret" not in text and "Home | About" not in text and "Example" not in text
    assert ("Bonus",) in [s.headings for s in doc.sections]


def test_plain_text_headings_and_pdf_text(tmp_path: Path) -> None:
    txt = write(
        tmp_path / "t.txt", "PRINTING\n\nUse the badge.\n\nScanning\n--------\nScan to mail.\n"
    )
    doc = read_document(txt, root=tmp_path)
    assert [s.headings for s in doc.sections] == [("Printing",), ("Scanning",)]
    pdfs = sorted(CORPUS.rglob("*.pdf"))
    assert pdfs, "the sample corpus ships PDF files"
    pdf = read_document(pdfs[0], root=CORPUS)
    assert pdf.format == "pdf" and sum(len(s.text) for s in pdf.sections) > 500
    assert all(any(h.startswith("page ") for h in s.headings) for s in pdf.sections)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("bad.md", "---\nlabels: [Not Valid!]\n---\nx\n", "not a valid access label"),
        ("bad2.md", "---\nlabels: [a\n---\nx\n", "front matter is not valid YAML"),
        ("empty.md", "---\ntitle: x\n---\n\n", "has no text"),
        ("x.docx", "text", "not a supported format"),
        ("broken.pdf", "%PDF-1.4 this is not a pdf", "PDF"),
    ],
)
def test_bad_files_are_document_errors_naming_the_file(
    tmp_path: Path, name: str, content: str, problem: str
) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(DocumentError) as info:
        read_document(path, root=tmp_path)
    assert problem in info.value.message and name in info.value.message


def test_non_utf8_and_bad_access_file(tmp_path: Path) -> None:
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DocumentError, match="not UTF-8"):
        read_document(tmp_path / "latin.txt", root=tmp_path)
    write(tmp_path / "d" / "_access.yaml", "labels: [ok]\nlables: typo\n")
    write(tmp_path / "d" / "a.md", "x")
    with pytest.raises(DocumentError, match="not a valid access file"):
        read_document(tmp_path / "d" / "a.md", root=tmp_path)


def test_chunks_keep_headings_stay_under_size_and_have_stable_ids(tmp_path: Path) -> None:
    long = "\n\n".join(f"Paragraph {i}. " + "Sentence about leave rules. " * 12 for i in range(12))
    path = write(tmp_path / "long.md", f"# Leave\n\n## Rules\n\n{long}\n\n## Other\n\nShort.\n")
    doc = read_document(path, root=tmp_path)
    chunks = chunk_document(doc, "v1")
    assert len(chunks) > 3
    assert all(len(c.text) <= DEFAULT_SIZE * 1.25 for c in chunks)
    assert {c.headings for c in chunks} == {("Rules",), ("Other",)}
    assert chunks[-1].text == "Short."  # sections never share a chunk
    assert chunks[0].embedding_text().startswith("Leave > Rules\n")
    assert [c.id for c in chunk_document(doc, "v1")] == [c.id for c in chunks]
    assert not {c.id for c in chunk_document(doc, "v2")} & {c.id for c in chunks}
