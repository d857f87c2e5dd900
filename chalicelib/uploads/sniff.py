"""What a file really is, from its first bytes. The declared Content-Type is the client's claim;
these signatures decide whether the object that landed in S3 matches it."""
from __future__ import annotations

HEAD_BYTES = 4096

# Declared content type → the sniffed types that satisfy it.
ACCEPTS: dict[str, frozenset[str]] = {
    "application/pdf": frozenset({"application/pdf"}),
    "application/epub+zip": frozenset({"application/epub+zip"}),
    "application/zip": frozenset({"application/zip", "application/epub+zip"}),
    "audio/mpeg": frozenset({"audio/mpeg"}),
    "audio/mp4": frozenset({"audio/mp4"}),
    "audio/x-m4a": frozenset({"audio/mp4"}),
    "video/mp4": frozenset({"video/mp4", "audio/mp4"}),
    "image/png": frozenset({"image/png"}),
    "image/jpeg": frozenset({"image/jpeg"}),
    "image/webp": frozenset({"image/webp"}),
    "text/markdown": frozenset({"text/plain"}),
    "text/plain": frozenset({"text/plain"}),
}
IMAGES = frozenset({"image/png", "image/jpeg", "image/webp"})
SAMPLES = IMAGES | {"application/pdf", "audio/mpeg", "audio/mp4", "audio/x-m4a", "video/mp4"}
AUDIO_BRANDS = (b"M4A ", b"M4B ", b"M4P ", b"F4A ")


def sniff(head: bytes) -> str | None:
    """The content type the bytes show, or None when nothing known matches."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        if head[30:58] == b"mimetypeapplication/epub+zip":
            return "application/epub+zip"
        return "application/zip"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return "audio/mp4" if head[8:12] in AUDIO_BRANDS else "video/mp4"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head and b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            # A multi-byte character cut at the end of the sample is still text.
            if exc.start < len(head) - 3:
                return None
        return "text/plain"
    return None


def matches(declared: str, head: bytes) -> tuple[bool, str | None]:
    """Whether the bytes are of the declared type, and what they were sniffed as."""
    found = sniff(head)
    return found in ACCEPTS.get(declared, frozenset()), found
