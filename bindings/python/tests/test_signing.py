"""sr25519 signatures and PRISM's message: PRISM's own test vector, and agreement with the
bittensor SDK's Keypair both ways."""

import hashlib
import json

import pytest

from assay import signing

# The known-good vector of PlatformNetwork/prism:tests/test_real_signature_auth.py@24aca0b
# (Alice's dev key signing a submission message).
ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
NONCE = "test-nonce-13"
TIMESTAMP = "1750000000"
BODY = b'{"code":"print(1)","filename":"model.py"}'
SIGNATURE = (
    "bc88793cb7dbcd7148c5592da54cee8d3b40956c36a6f367281d4341bedfce14"
    "4b43bf85a664fa108faf9d1ec97da027f144e67e47aea3a955de4e0d2069dc89"
)
FORGED = (
    "1e6c877697c7adc1a2fe951a462883bfd76658f01a875748dade03c83d45be68"
    "890a819de4f7500e2eac539019c6832f3031a7823cecb367b09e9842f2701885"
)


def test_prism_message_is_prisms_format():
    message = signing.prism_message(ALICE, NONCE, TIMESTAMP, BODY)
    digest = hashlib.sha256(BODY).hexdigest()
    assert message == f"prism:{ALICE}:{NONCE}:{TIMESTAMP}:{digest}"
    checkpoint = signing.prism_message(ALICE, NONCE, TIMESTAMP, BODY, checkpoint=True)
    assert checkpoint == f"prism:checkpoint:{ALICE}:{NONCE}:{TIMESTAMP}:{digest}"


def test_prisms_known_good_signature_verifies_and_forgeries_do_not():
    message = signing.prism_message(ALICE, NONCE, TIMESTAMP, BODY)
    assert signing.verify(ALICE, message, SIGNATURE)
    assert signing.verify(ALICE, message, "0x" + SIGNATURE)
    assert signing.verify(ALICE, message.encode(), bytes.fromhex(SIGNATURE))
    assert not signing.verify(ALICE, message, FORGED)
    assert not signing.verify(ALICE, message, "not-a-real-signature")
    tampered = signing.prism_message(ALICE, "tampered-nonce", TIMESTAMP, BODY)
    assert not signing.verify(ALICE, tampered, SIGNATURE)
    other_body = signing.prism_message(ALICE, NONCE, TIMESTAMP, BODY + b" ")
    assert not signing.verify(ALICE, other_body, SIGNATURE)


def test_ss58_round_trip_and_checksum():
    key, prefix = signing.ss58_decode(ALICE)
    assert prefix == 42 and len(key) == 32
    assert signing.ss58_encode(key) == ALICE
    broken = ALICE[:-1] + ("R" if ALICE[-1] != "R" else "S")
    with pytest.raises(ValueError, match="checksum|base58|bytes"):
        signing.ss58_decode(broken)


def test_hotkey_signs_what_verify_accepts_including_the_bytes_wrapping():
    hotkey = signing.Hotkey.from_seed("0x" + "11" * 32)
    message = b"hello validator"
    first, second = hotkey.sign(message), hotkey.sign(message)
    assert first != second  # sr25519 signing is randomised
    assert signing.verify(hotkey.ss58_address, message, first)
    assert signing.verify(hotkey.ss58_address, message, second)
    wrapped = hotkey.sign(b"<Bytes>" + message + b"</Bytes>")
    assert signing.verify(hotkey.ss58_address, message, wrapped)
    assert not signing.verify(hotkey.ss58_address, b"hello validators", first)
    assert not signing.verify(ALICE, message, first)


def test_prism_headers_sign_the_exact_body():
    hotkey = signing.Hotkey.from_seed(bytes(range(32)))
    body = json.dumps({"filename": "p.zip", "code": "UEsDBA==", "metadata": {}}).encode()
    headers = signing.prism_headers(hotkey, body, timestamp=1750000000)
    assert headers["X-Hotkey"] == hotkey.ss58_address
    assert headers["X-Timestamp"] == "1750000000"
    assert len(headers["X-Nonce"]) == 32
    message = signing.prism_message(hotkey.ss58_address, headers["X-Nonce"], "1750000000", body)
    assert signing.verify(hotkey.ss58_address, message, headers["X-Signature"])
    assert not signing.verify(
        hotkey.ss58_address,
        signing.prism_message(hotkey.ss58_address, headers["X-Nonce"], "1750000000", body + b"x"),
        headers["X-Signature"],
    )


def test_agrees_with_the_bittensor_keypair_both_ways():
    core = pytest.importorskip("bittensor_core")
    seed = bytes(range(1, 33))
    theirs = core.Keypair.create_from_seed(seed)
    ours = signing.Hotkey.from_seed(seed)
    assert ours.ss58_address == theirs.ss58_address
    assert bytes(ours.public_key) == bytes(theirs.public_key)
    message = signing.prism_message(ours.ss58_address, "n-1", "1750000000", BODY).encode()
    # Theirs signs, we verify (what `assay serve` does with a miner's request).
    signature = bytes(theirs.sign(message))
    assert signing.verify(theirs.ss58_address, message, signature)
    assert not signing.verify(theirs.ss58_address, message + b"!", signature)
    # We sign, theirs verifies.
    assert theirs.verify(message, ours.sign(message))
    assert not theirs.verify(message + b"!", ours.sign(message))
    # prism_headers works with their Keypair as the signer.
    headers = signing.prism_headers(theirs, BODY)
    signed = signing.prism_message(
        theirs.ss58_address, headers["X-Nonce"], headers["X-Timestamp"], BODY
    )
    assert signing.verify(theirs.ss58_address, signed, headers["X-Signature"])
