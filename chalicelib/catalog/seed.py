"""The starting category tree (local stack, tests, and a new stage's first run)."""
from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from chalicelib.catalog import categories
from chalicelib.errors import Conflict

if TYPE_CHECKING:
    from chalicelib.catalog.schemas import Currency, Kind

# (slug, name, parent)
DEFAULT_CATEGORIES = [
    ("tech", "技术 Technology", None),
    ("programming", "编程 Programming", "tech"),
    ("data", "数据 Data", "tech"),
    ("design", "设计 Design", None),
    ("business", "商业 Business", None),
    ("language", "语言 Languages", None),
    ("music", "音乐 Music", None),
    ("exam", "考试 Exams", None),
]


def seed_categories() -> None:
    """Create the default categories that do not exist yet."""
    for position, (slug, name, parent) in enumerate(DEFAULT_CATEGORIES):
        try:
            categories.create(slug, name, parent, position)
        except Conflict:
            pass


def _pdf(title: str) -> bytes:
    return (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
            b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n% " + title.encode() +
            b"\ntrailer<</Root 1 0 R>>\n%%EOF\n")


def _mp3() -> bytes:
    # An ID3v2 header and one silent MPEG-1 Layer III frame.
    return b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" + b"\x00" * 413


class _Demo(TypedDict):
    title: str
    kind: Kind
    category: str
    price: tuple[int, Currency]
    tags: list[str]
    description: str
    file: tuple[str, str]  # filename, "pdf" or "mp3"


DEMO_RESOURCES: list[_Demo] = [
    {"title": "Python数据分析实战", "kind": "ebook", "category": "data",
     "price": (4900, "cny"), "tags": ["Python", "数据分析", "pandas"],
     "description": "用 pandas、NumPy 与 Matplotlib 完成真实的数据分析项目。\n\n"
                    "- 数据清洗\n- 可视化\n- 报告", "file": ("python-data.pdf", "pdf")},
    {"title": "Design Systems 101", "kind": "ebook", "category": "design",
     "price": (0, "usd"), "tags": ["Figma", "UI"],
     "description": "A free primer on building and keeping a design system.",
     "file": ("design-systems.pdf", "pdf")},
    {"title": "商务英语听力 Business English Listening", "kind": "audio",
     "category": "language", "price": (999, "usd"), "tags": ["English", "听力"],
     "description": "Twenty short dialogues from meetings, calls and trips.",
     "file": ("listening-01.mp3", "mp3")},
]


def seed_demo_catalog(creator_id: str, creator_name: str, admin_id: str) -> list[str]:
    """Publish the demo resources through the real flow (draft, upload, check, review).

    The file goes to S3 directly rather than through a presigned form, and is checked right
    away by the same code the upload-events consumer runs.
    """
    from chalicelib.catalog import files, moderation, resources
    from chalicelib.catalog.schemas import Money, ResourceIn
    from chalicelib.config import settings
    from chalicelib.uploads import objects

    made = []
    for demo in DEMO_RESOURCES:
        amount, currency = demo["price"]
        body = ResourceIn(title=demo["title"], description=demo["description"],
                          price=Money(amount=amount, currency=currency), kind=demo["kind"],
                          category=demo["category"], tags=demo["tags"])
        resource = resources.create(creator_id, creator_name, body)
        filename, kind = demo["file"]
        data, content_type = (_pdf(demo["title"]), "application/pdf") if kind == "pdf" \
            else (_mp3(), "audio/mpeg")
        form = resources.create_upload(creator_id, resource.id, filename, content_type,
                                       len(data), "file")
        if form.fields is None:  # a demo file is small: a form POST, never multipart
            raise RuntimeError(f"{filename} was given a multipart upload")
        key = form.fields["key"]
        objects.put(settings().uploads_bucket, key, data, content_type)
        files.check_object(key)
        resources.submit(creator_id, resource.id)
        moderation.approve(admin_id, resource.id)
        made.append(resource.id)
    return made
