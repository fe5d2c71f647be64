//! Hotkey signatures exactly as PRISM checks them: sr25519 (schnorrkel, signing context
//! `substrate`) over `prism:{hotkey}:{nonce}:{timestamp}:{sha256(body) hex}`, with the hotkey an
//! SS58 address (prefix 42 on Bittensor). Like bittensor's `Keypair.verify`, a signature over the
//! `<Bytes>…</Bytes>`-wrapped message (what the polkadot.js extension signs) is accepted too.
//!
//! Also the internal routes' Bearer token, compared in constant time.

use blake2::{Blake2b512, Digest as _};
use schnorrkel::{ExpansionMode, Keypair, MiniSecretKey, PublicKey, Signature};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The sr25519 signing context of Substrate (and so of Bittensor hotkeys).
pub const SIGNING_CONTEXT: &[u8] = b"substrate";

/// The SS58 network prefix of Bittensor (the generic Substrate one).
pub const SS58_PREFIX: u16 = 42;

/// Why an SS58 address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ss58Error {
    /// Not base58.
    #[error("not base58")]
    Base58,
    /// Wrong decoded length for a 32-byte key.
    #[error("decodes to {0} bytes, expected 35 or 36 for a 32-byte key")]
    Length(usize),
    /// The 2-byte checksum does not match.
    #[error("checksum mismatch")]
    Checksum,
}

fn ss58_hash(data: &[u8]) -> [u8; 64] {
    let mut hasher = Blake2b512::new();
    hasher.update(b"SS58PRE");
    hasher.update(data);
    let digest = hasher.finalize();
    let mut out = [0u8; 64];
    out.copy_from_slice(&digest);
    out
}

/// Decodes an SS58 address into its network prefix and 32-byte public key, checking the
/// checksum.
pub fn ss58_decode(address: &str) -> Result<(u16, [u8; 32]), Ss58Error> {
    let bytes = bs58::decode(address)
        .into_vec()
        .map_err(|_| Ss58Error::Base58)?;
    let (prefix, prefix_len) = match bytes.first() {
        Some(&b) if b < 64 => (u16::from(b), 1),
        Some(&b) if b < 128 && bytes.len() > 1 => {
            let lower = (u16::from(b) << 2) | (u16::from(bytes[1]) >> 6);
            let upper = u16::from(bytes[1] & 0x3f);
            (lower | (upper << 8), 2)
        }
        _ => return Err(Ss58Error::Base58),
    };
    if bytes.len() != prefix_len + 32 + 2 {
        return Err(Ss58Error::Length(bytes.len()));
    }
    let body = &bytes[..prefix_len + 32];
    let checksum = ss58_hash(body);
    if checksum[..2] != bytes[prefix_len + 32..] {
        return Err(Ss58Error::Checksum);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes[prefix_len..prefix_len + 32]);
    Ok((prefix, key))
}

/// Encodes a 32-byte public key as an SS58 address with a one-byte prefix (< 64).
pub fn ss58_encode(prefix: u8, key: &[u8; 32]) -> String {
    let mut data = Vec::with_capacity(35);
    data.push(prefix & 0x3f);
    data.extend_from_slice(key);
    let checksum = ss58_hash(&data);
    data.extend_from_slice(&checksum[..2]);
    bs58::encode(data).into_string()
}

/// The bytes a miner signs for a PRISM submission: `prism:{hotkey}:{nonce}:{timestamp}:{sha256}`
/// with the timestamp exactly as sent in `X-Timestamp`. Other pipelines use their own `scope`
/// (`sn37`, `datacomp`, `prism:checkpoint`) so a signature cannot be replayed across routes.
pub fn canonical_message(
    scope: &str,
    hotkey: &str,
    nonce: &str,
    timestamp: &str,
    body: &[u8],
) -> Vec<u8> {
    let digest = hex::encode(Sha256::digest(body));
    format!("{scope}:{hotkey}:{nonce}:{timestamp}:{digest}").into_bytes()
}

/// Decodes `X-Signature` the way PRISM does: hex with or without `0x`. Anything else is not a
/// signature (`None`), which then fails verification.
pub fn decode_signature(header: &str) -> Option<Vec<u8>> {
    hex::decode(header.strip_prefix("0x").unwrap_or(header)).ok()
}

/// Whether `signature` is `hotkey`'s sr25519 signature of `message`, or of
/// `<Bytes>message</Bytes>`. Any malformed input (address, key, signature) is simply `false`.
pub fn verify_hotkey_signature(hotkey: &str, message: &[u8], signature: &str) -> bool {
    let Ok((_, key)) = ss58_decode(hotkey) else {
        return false;
    };
    let Ok(public) = PublicKey::from_bytes(&key) else {
        return false;
    };
    let Some(bytes) = decode_signature(signature) else {
        return false;
    };
    let Ok(signature) = Signature::from_bytes(&bytes) else {
        return false;
    };
    if public
        .verify_simple(SIGNING_CONTEXT, message, &signature)
        .is_ok()
    {
        return true;
    }
    let mut wrapped = Vec::with_capacity(message.len() + 15);
    wrapped.extend_from_slice(b"<Bytes>");
    wrapped.extend_from_slice(message);
    wrapped.extend_from_slice(b"</Bytes>");
    public
        .verify_simple(SIGNING_CONTEXT, &wrapped, &signature)
        .is_ok()
}

/// Compares a request's `Authorization` header with `Bearer {token}` in constant time (in the
/// token's length; an empty configured token never matches).
pub fn bearer_matches(header: Option<&str>, token: &str) -> bool {
    if token.is_empty() {
        return false;
    }
    let expected = format!("Bearer {token}");
    let given = header.unwrap_or("");
    // Equal length is checked inside ct_eq without an early return on content.
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// An sr25519 key that signs requests like a miner's wallet (tests, the load generator, demo).
pub struct Signer {
    keypair: Keypair,
    address: String,
}

impl Signer {
    /// The key derived from a 32-byte seed (as substrate's `MiniSecretKey`, Ed25519 expansion).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let keypair = MiniSecretKey::from_bytes(&seed)
            .expect("a 32-byte seed is always a valid mini secret key")
            .expand_to_keypair(ExpansionMode::Ed25519);
        let address = ss58_encode(SS58_PREFIX as u8, &keypair.public.to_bytes());
        Self { keypair, address }
    }

    /// The SS58 address (prefix 42).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Signs `message`; hex without `0x`.
    pub fn sign_hex(&self, message: &[u8]) -> String {
        hex::encode(
            self.keypair
                .sign_simple(SIGNING_CONTEXT, message)
                .to_bytes(),
        )
    }

    /// The four PRISM headers for a body: `(X-Hotkey, X-Signature, X-Nonce, X-Timestamp)`.
    pub fn headers(
        &self,
        scope: &str,
        nonce: &str,
        timestamp: i64,
        body: &[u8],
    ) -> [(&'static str, String); 4] {
        let timestamp = timestamp.to_string();
        let message = canonical_message(scope, &self.address, nonce, &timestamp, body);
        [
            ("x-hotkey", self.address.clone()),
            ("x-signature", self.sign_hex(&message)),
            ("x-nonce", nonce.to_string()),
            ("x-timestamp", timestamp),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // PRISM's own known-good vector: PlatformNetwork/prism tests/test_real_signature_auth.py
    // @24aca0b (Alice's hotkey; the signature was made by bittensor's Keypair).
    const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    const NONCE: &str = "test-nonce-13";
    const TIMESTAMP: &str = "1750000000";
    const BODY: &[u8] = br#"{"code":"print(1)","filename":"model.py"}"#;
    const SIG: &str = "bc88793cb7dbcd7148c5592da54cee8d3b40956c36a6f367281d4341bedfce14\
                       4b43bf85a664fa108faf9d1ec97da027f144e67e47aea3a955de4e0d2069dc89";
    const FORGED: &str = "1e6c877697c7adc1a2fe951a462883bfd76658f01a875748dade03c83d45be68\
                          890a819de4f7500e2eac539019c6832f3031a7823cecb367b09e9842f2701885";

    fn alice_message() -> Vec<u8> {
        canonical_message("prism", ALICE, NONCE, TIMESTAMP, BODY)
    }

    #[test]
    fn prism_vector_verifies() {
        assert!(verify_hotkey_signature(ALICE, &alice_message(), SIG));
        assert!(verify_hotkey_signature(
            ALICE,
            &alice_message(),
            &format!("0x{SIG}")
        ));
    }

    #[test]
    fn prism_negative_vectors_fail() {
        assert!(!verify_hotkey_signature(ALICE, &alice_message(), FORGED));
        let tampered = canonical_message("prism", ALICE, "tampered-nonce", TIMESTAMP, BODY);
        assert!(!verify_hotkey_signature(ALICE, &tampered, SIG));
        let body = canonical_message("prism", ALICE, NONCE, TIMESTAMP, b"{}");
        assert!(!verify_hotkey_signature(ALICE, &body, SIG));
        assert!(!verify_hotkey_signature(
            ALICE,
            &alice_message(),
            "not-a-real-signature"
        ));
        // Another pipeline's scope is another message.
        let sn37 = canonical_message("sn37", ALICE, NONCE, TIMESTAMP, BODY);
        assert!(!verify_hotkey_signature(ALICE, &sn37, SIG));
        // A bad address never panics.
        assert!(!verify_hotkey_signature("5Grwva", &alice_message(), SIG));
        assert!(!verify_hotkey_signature("", &alice_message(), SIG));
    }

    #[test]
    fn ss58_round_trip_and_checksum() {
        let (prefix, key) = ss58_decode(ALICE).unwrap();
        assert_eq!(prefix, 42);
        assert_eq!(
            hex::encode(key),
            "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
        );
        assert_eq!(ss58_encode(42, &key), ALICE);
        let mut bad = ALICE.to_string();
        bad.replace_range(10..11, "a");
        assert!(ss58_decode(&bad).is_err());
    }

    #[test]
    fn own_signatures_verify_raw_and_wrapped() {
        let signer = Signer::from_seed([7; 32]);
        let message = canonical_message("prism", signer.address(), "n", "1", b"body");
        assert!(verify_hotkey_signature(
            signer.address(),
            &message,
            &signer.sign_hex(&message)
        ));
        let mut wrapped = b"<Bytes>".to_vec();
        wrapped.extend_from_slice(&message);
        wrapped.extend_from_slice(b"</Bytes>");
        assert!(verify_hotkey_signature(
            signer.address(),
            &message,
            &signer.sign_hex(&wrapped)
        ));
        let other = Signer::from_seed([8; 32]);
        assert!(!verify_hotkey_signature(
            signer.address(),
            &message,
            &other.sign_hex(&message)
        ));
    }

    #[test]
    fn bearer_tokens() {
        assert!(bearer_matches(Some("Bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(Some("Bearer s3creT"), "s3cret"));
        assert!(!bearer_matches(Some("Bearer s3cret "), "s3cret"));
        assert!(!bearer_matches(Some("s3cret"), "s3cret"));
        assert!(!bearer_matches(None, "s3cret"));
        assert!(!bearer_matches(Some("Bearer "), ""));
    }
}
