"""sr25519 hotkeys and SS58 addresses (as substrate and bittensor make them), and the signed
headers of a PRISM request."""

from __future__ import annotations

import time
import uuid
from typing import Optional, Protocol, Union

from ._assay.signing import SS58_PREFIX, Hotkey, prism_message, ss58_decode, ss58_encode, verify

__all__ = [
    "SS58_PREFIX",
    "Hotkey",
    "Signer",
    "prism_headers",
    "prism_message",
    "ss58_decode",
    "ss58_encode",
    "verify",
]


class Signer(Protocol):
    """Anything that signs like a hotkey: ``assay.signing.Hotkey`` or bittensor's ``Keypair``."""

    @property
    def ss58_address(self) -> str: ...

    def sign(self, data: bytes) -> Union[bytes, list[int]]: ...


def prism_headers(
    signer: Signer,
    body: bytes,
    *,
    nonce: Optional[str] = None,
    timestamp: Optional[int] = None,
    checkpoint: bool = False,
) -> dict[str, str]:
    """The ``X-Hotkey``, ``X-Signature``, ``X-Nonce`` and ``X-Timestamp`` headers of a PRISM
    request whose raw body is ``body``: the signer signs
    ``prism:{hotkey}:{nonce}:{timestamp}:{sha256(body) hex}`` (``prism:checkpoint:...`` with
    ``checkpoint``), as PRISM's SDK does. A fresh random nonce and the current time are used
    unless given (the nonce as PRISM's own client makes it, ``uuid4().hex``)."""
    hotkey = signer.ss58_address
    nonce = nonce if nonce is not None else uuid.uuid4().hex
    stamp = str(int(time.time()) if timestamp is None else int(timestamp))
    message = prism_message(hotkey, nonce, stamp, bytes(body), checkpoint=checkpoint)
    signature = bytes(signer.sign(message.encode("utf-8")))
    return {
        "X-Hotkey": hotkey,
        "X-Signature": signature.hex(),
        "X-Nonce": nonce,
        "X-Timestamp": stamp,
    }
