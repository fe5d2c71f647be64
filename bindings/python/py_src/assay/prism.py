"""PRISM from Python.

The validator side, in Rust: ``check_bundle`` (the static gates: contract, sandbox rules,
fingerprints), ``score_run`` (a finished run's score from its prequential record: bpb, held-out
tie-break, memorisation gap, step-0 check) and ``Leaderboard`` (ranking, the two-tier crown and
its weights). The miner side: sign a bundle upload with a hotkey and send it to ``assay serve``
(or to PRISM itself), exactly as PRISM's SDK signs requests (``submit_bundle``)."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, Optional, Union

from ._assay.prism import Leaderboard, check_bundle, score_run
from .signing import Signer, prism_headers

__all__ = [
    "Leaderboard",
    "SubmissionRejected",
    "check_bundle",
    "score_run",
    "submission_body",
    "submit_bundle",
    "zip_folder",
]


class SubmissionRejected(Exception):
    """The server refused the submission: ``status`` is the HTTP status (401 bad signature, 403
    validator hotkey, 409 reused nonce, 400/413 bad body, ...), ``detail`` its JSON or text."""

    def __init__(self, status: int, detail: Any):
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


def zip_folder(folder: Union[str, Path]) -> bytes:
    """A bundle folder as zip bytes (files in sorted order, so the same folder gives the same
    bytes)."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def submission_body(
    bundle: Union[bytes, str, Path], filename: str = "project.zip", metadata: Optional[dict] = None
) -> bytes:
    """The JSON body of ``POST /v1/submissions``: ``{"filename", "code": base64 zip,
    "metadata"}``. ``bundle`` is zip bytes, a ``.zip`` file or a folder (zipped)."""
    if isinstance(bundle, (str, Path)):
        path = Path(bundle)
        data = zip_folder(path) if path.is_dir() else path.read_bytes()
    else:
        data = bytes(bundle)
    payload = {
        "filename": filename,
        "code": base64.b64encode(data).decode("ascii"),
        "metadata": metadata or {},
    }
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def submit_bundle(
    url: str,
    signer: Signer,
    bundle: Union[bytes, str, Path],
    *,
    filename: str = "project.zip",
    metadata: Optional[dict] = None,
    timeout: float = 60.0,
    nonce: Optional[str] = None,
    timestamp: Optional[int] = None,
) -> dict:
    """Signs and uploads a bundle to ``{url}/v1/submissions``; returns the server's JSON reply.

    ``signer`` is an ``assay.signing.Hotkey`` or a bittensor ``Keypair`` (a wallet's hotkey).
    The exact bytes signed are the bytes sent. Raises ``SubmissionRejected`` on an HTTP error.
    """
    body = submission_body(bundle, filename, metadata)
    headers = prism_headers(signer, body, nonce=nonce, timestamp=timestamp)
    headers["Content-Type"] = "application/json"
    request = urllib.request.Request(
        url.rstrip("/") + "/v1/submissions", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            detail: Any = json.loads(raw)
        except ValueError:
            detail = raw.decode("utf-8", "replace")
        raise SubmissionRejected(error.code, detail) from None
