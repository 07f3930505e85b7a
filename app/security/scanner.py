"""Scanning one pickle-based file with picklescan, in its strictest reading.

picklescan (`scan_bytes`) knows the layouts: plain pickles, torch zip archives (it scans the
archive's pickles, never the tensor data), legacy torch files (the five leading pickles, not
the raw storage bytes after them), numpy `.npy`/`.npz`. With `strict=True` every import it does
not list as innocuous counts as dangerous. On top of that, a file is only `safe` when the scan
was complete; picklescan logs, but does not report, two ways a scan can fall short:

- "could not parse … as pickle" when parsing failed before any import was seen: it returns an
  empty (clean-looking) result. A parser that gave up early has not seen the rest, so for the
  file itself, or for a `.pkl` member of an archive, that is an `error`. Other archive members
  are only scanned because their first bytes look like a pickle; raw tensor data often does,
  so their parse failures are expected and ignored (torch never unpickles them);
- "Invalid file … in zip archive": an archive member it could not read (encrypted, corrupt),
  which might hold a pickle: `error`.

An exception from the scanner, or a file whose pickles need more than `MAX_SCAN_READ` bytes
read, is an `error` too. Callers treat `error` as unsafe. A stored object that cannot be read
is not a verdict: that error is raised again, even where picklescan swallowed it.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import NoReturn

from picklescan.scanner import SafetyLevel, scan_bytes

MiB = 1024 * 1024
# Total bytes the scanner may read from one file. Pickles in model files are small (torch keeps
# tensors outside them); a pickle with gigabytes inline would be held in memory by the parser.
MAX_SCAN_READ = 512 * MiB
READ_WINDOW = 64 * 1024  # bytes per range read: a zip probe of each member needs only a few
FILE_ID = "file"  # how the scanned file is named in picklescan's log lines
SCANNER = f"picklescan {version('picklescan')}"
# Files loaded with pickle (torch.load, joblib.load, pickle.load, numpy with allow_pickle).
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".npy", ".npz")
_NOT_PARSED = re.compile(r"could not parse (?P<id>.+?) as pickle")
_BAD_MEMBER = re.compile(r"Invalid file .+ in zip archive")

SAFE, UNSAFE, ERROR = "safe", "unsafe", "error"


def is_pickle_path(path: str) -> bool:
    return path.lower().endswith(PICKLE_SUFFIXES)


@dataclass(frozen=True)
class Verdict:
    status: str  # SAFE | UNSAFE | ERROR
    imports: list[str] = field(default_factory=list)  # "module.name", the ones not innocuous
    detail: str | None = None

    @property
    def safe(self) -> bool:
        return self.status == SAFE


ScanInput = io.RawIOBase | io.BufferedIOBase


class ScanLimit(Exception):
    """The scanner asked for more bytes than a RangeFile allows."""


def scan(data: ScanInput, path: str) -> Verdict:
    """The verdict on one file; path gives the suffix picklescan picks a layout by."""
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path else None
    problems = _ScanLog()
    logger = logging.getLogger("picklescan")
    if logger.getEffectiveLevel() > logging.WARNING:
        logger.setLevel(logging.WARNING)  # its warnings are how an incomplete scan shows
    logger.addHandler(problems)
    try:
        result = scan_bytes(data, FILE_ID, suffix, strict=True)
    except Exception as exc:
        if isinstance(data, RangeFile) and data.failure is not None:
            return _read_failure(data.failure)
        return Verdict(ERROR, detail=f"the scanner failed: {type(exc).__name__}: {exc}")
    finally:
        logger.removeHandler(problems)
    if isinstance(data, RangeFile) and data.failure is not None:
        return _read_failure(data.failure)  # picklescan catches errors of reads mid-pickle
    imports = sorted(
        {f"{g.module}.{g.name}" for g in result.globals if g.safety != SafetyLevel.Innocuous}
    )
    if imports:
        return Verdict(UNSAFE, imports)
    if result.scan_err or problems.lines:
        return Verdict(ERROR, detail=problems.lines[0] if problems.lines else "unparsable pickle")
    return Verdict(SAFE)


def _read_failure(failure: Exception) -> Verdict:
    """A read that failed under the scanner: over the limit is a verdict, a store that did
    not answer is not (it is raised again, so no verdict records an outage)."""
    if isinstance(failure, ScanLimit):
        return Verdict(ERROR, detail=str(failure))
    raise failure


class _ScanLog(logging.Handler):
    """Collects the log lines that mean the scan was incomplete (see the module docstring).
    Scans run on many threads at once and picklescan has one logger: each handler keeps only
    the lines of the thread that runs its scan (picklescan logs from the calling thread)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        message = record.getMessage()
        parse = _NOT_PARSED.search(message)
        if parse is not None:
            member = parse["id"].removeprefix(FILE_ID)
            if member and not member.lower().endswith(".pkl"):
                return
            self.lines.append(f"not a readable pickle: {message.split(': ', 2)[-1]}")
        elif record.levelno >= logging.ERROR or _BAD_MEMBER.search(message):
            self.lines.append(message.removeprefix("ERROR: ").removeprefix("WARNING: "))


OpenRange = Callable[[int, int], Iterator[bytes]]


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over ranged reads of a stored object, so that a zip's
    central directory and members are reached without fetching the whole object. Reads are
    fetched in windows of `READ_WINDOW` (a pickle is parsed a few bytes at a time); what the
    scanner reads in all is capped (`limit`, then ScanLimit), checked before any read so a
    length field in a hostile pickle never allocates more than that."""

    def __init__(self, open_range: OpenRange, size: int, limit: int = MAX_SCAN_READ):
        super().__init__()
        self.open_range = open_range
        self.length = size
        self.limit = limit
        self.pos = 0
        self.consumed = 0
        self.window_start = 0
        self.window = b""
        self.failure: Exception | None = None  # the first failed read, even if swallowed

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.length}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        end = self.length if size is None or size < 0 else min(self.length, self.pos + size)
        if self.consumed + end - self.pos > self.limit:
            self._fail(ScanLimit(f"its pickles need more than {self.limit:,} bytes read"))
        out = bytearray()
        while self.pos < end:
            offset = self.pos - self.window_start
            if not 0 <= offset < len(self.window):
                self._fetch(end - self.pos)
                offset = 0
                if not self.window:
                    break  # the store has fewer bytes than the index says: a short read
            piece = self.window[offset : offset + end - self.pos]
            out += piece
            self.pos += len(piece)
        self.consumed += len(out)
        return bytes(out)

    def readline(self, size: int | None = -1) -> bytes:
        out = bytearray()
        while size is None or size < 0 or len(out) < size:
            byte = self.read(1)
            out += byte
            if not byte or byte == b"\n":
                break
        return bytes(out)

    def _fetch(self, wanted: int) -> None:
        length = min(max(wanted, READ_WINDOW), self.length - self.pos)
        self.window_start = self.pos
        try:
            self.window = b"".join(self.open_range(self.pos, length))
        except Exception as exc:
            self.window = b""
            self._fail(exc)

    def _fail(self, exc: Exception) -> NoReturn:
        self.failure = self.failure or exc
        raise exc
