//! `assay.signing`: sr25519 hotkeys (schnorrkel, as substrate and bittensor use them), SS58
//! addresses, and PRISM's request message.
//!
//! Signatures use the signing context `substrate`. Verification accepts the raw message and the
//! `<Bytes>...</Bytes>` wrapping polkadot.js applies, as bittensor's `Keypair.verify` does.

use blake2::{Blake2b512, Digest as _};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use schnorrkel::{ExpansionMode, MiniSecretKey, PublicKey, Signature};
use sha2::Sha256;

use crate::errors::bad_argument;

const CONTEXT: &[u8] = b"substrate";
/// The SS58 prefix of Bittensor (and generic substrate) addresses.
const BITTENSOR_PREFIX: u16 = 42;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Hotkey>()?;
    m.add_function(wrap_pyfunction!(ss58_encode, m)?)?;
    m.add_function(wrap_pyfunction!(ss58_decode, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(prism_message, m)?)?;
    m.add("SS58_PREFIX", BITTENSOR_PREFIX)?;
    Ok(())
}

fn ss58_checksum(body: &[u8]) -> [u8; 2] {
    let mut hasher = Blake2b512::new();
    hasher.update(b"SS58PRE");
    hasher.update(body);
    let hash = hasher.finalize();
    [hash[0], hash[1]]
}

/// The SS58 address of a 32-byte public key (`prefix` 42 for Bittensor).
#[pyfunction]
#[pyo3(signature = (public_key, prefix=BITTENSOR_PREFIX))]
fn ss58_encode(public_key: &[u8], prefix: u16) -> PyResult<String> {
    if public_key.len() != 32 {
        return Err(bad_argument(format!(
            "a public key is 32 bytes, got {}",
            public_key.len()
        )));
    }
    let mut body = match prefix {
        0..=63 => vec![prefix as u8],
        64..=16_383 => {
            let first = ((prefix & 0b0000_0000_1111_1100) as u8 >> 2) | 0b0100_0000;
            let second = ((prefix >> 8) as u8) | (((prefix & 0b11) as u8) << 6);
            vec![first, second]
        }
        _ => return Err(bad_argument(format!("SS58 prefix {prefix} is above 16383"))),
    };
    body.extend_from_slice(public_key);
    let checksum = ss58_checksum(&body);
    body.extend_from_slice(&checksum);
    Ok(bs58::encode(body).into_string())
}

/// The 32-byte public key and the prefix of an SS58 address; raises `ValueError` on a bad
/// character, length or checksum.
#[pyfunction]
fn ss58_decode<'py>(py: Python<'py>, address: &str) -> PyResult<(Bound<'py, PyBytes>, u16)> {
    let (key, prefix) = decode_address(address)?;
    Ok((PyBytes::new(py, &key), prefix))
}

fn decode_address(address: &str) -> PyResult<([u8; 32], u16)> {
    let data = bs58::decode(address)
        .into_vec()
        .map_err(|e| bad_argument(format!("`{address}` is not base58: {e}")))?;
    let (prefix, prefix_len) = match data.first() {
        Some(&b) if b < 64 => (b as u16, 1),
        Some(&b) if b < 128 && data.len() > 1 => {
            let lower = ((b << 2) | (data[1] >> 6)) as u16;
            let upper = (data[1] & 0b0011_1111) as u16;
            (lower | (upper << 8), 2)
        }
        _ => {
            return Err(bad_argument(format!(
                "`{address}` has no valid SS58 prefix"
            )));
        }
    };
    if data.len() != prefix_len + 32 + 2 {
        return Err(bad_argument(format!(
            "`{address}` decodes to {} bytes; an SS58 account address has {}",
            data.len(),
            prefix_len + 34
        )));
    }
    let (body, checksum) = data.split_at(prefix_len + 32);
    if ss58_checksum(body) != checksum {
        return Err(bad_argument(format!("`{address}` fails its SS58 checksum")));
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&body[prefix_len..]);
    Ok((key, prefix))
}

/// An sr25519 key pair made from a 32-byte seed, as substrate's `sr25519::Pair::from_seed` and
/// bittensor's `Keypair.create_from_seed` make it (the same seed gives the same address).
#[pyclass(module = "assay.signing", frozen)]
struct Hotkey {
    keypair: schnorrkel::Keypair,
}

#[pymethods]
impl Hotkey {
    /// The key pair of a 32-byte seed (`bytes`, or a hex `str` with or without `0x`).
    #[staticmethod]
    fn from_seed(seed: &Bound<'_, PyAny>) -> PyResult<Self> {
        let bytes: Vec<u8> = if let Ok(text) = seed.extract::<String>() {
            let digits = text.strip_prefix("0x").unwrap_or(&text);
            hex::decode(digits).map_err(|e| bad_argument(format!("seed is not hex: {e}")))?
        } else {
            seed.extract::<Vec<u8>>()?
        };
        let mini = MiniSecretKey::from_bytes(&bytes)
            .map_err(|_| bad_argument(format!("a seed is 32 bytes, got {}", bytes.len())))?;
        Ok(Self {
            keypair: mini.expand_to_keypair(ExpansionMode::Ed25519),
        })
    }

    /// The 32-byte public key.
    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.keypair.public.to_bytes())
    }

    /// The SS58 address (prefix 42).
    #[getter]
    fn ss58_address(&self) -> PyResult<String> {
        ss58_encode(&self.keypair.public.to_bytes(), BITTENSOR_PREFIX)
    }

    /// A 64-byte sr25519 signature of `message` (a `str` is signed as its UTF-8). Signing is
    /// randomised: two signatures of one message differ, and both verify.
    fn sign<'py>(
        &self,
        py: Python<'py>,
        message: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let data = message_bytes(message)?;
        let signature = py.detach(|| self.keypair.sign_simple(CONTEXT, &data));
        Ok(PyBytes::new(py, &signature.to_bytes()))
    }

    fn __repr__(&self) -> PyResult<String> {
        Ok(format!("Hotkey({})", self.ss58_address()?))
    }
}

/// The bytes of a message: `bytes` as they are, a `str` as UTF-8 (bittensor hex-decodes a
/// `0x...` str; that form is accepted too, for parity with `Keypair.verify`).
fn message_bytes(message: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(text) = message.extract::<String>() {
        if let Some(digits) = text.strip_prefix("0x")
            && let Ok(bytes) = hex::decode(digits)
        {
            return Ok(bytes);
        }
        return Ok(text.into_bytes());
    }
    message.extract::<Vec<u8>>()
}

/// Whether `signature` (64 bytes, or a hex `str` with or without `0x`) is `address`'s
/// signature of `message`, raw or `<Bytes>`-wrapped. A malformed address raises `ValueError`;
/// a malformed signature is simply not valid.
#[pyfunction]
fn verify(
    address: &str,
    message: &Bound<'_, PyAny>,
    signature: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let (key, _) = decode_address(address)?;
    let public = PublicKey::from_bytes(&key)
        .map_err(|e| bad_argument(format!("`{address}` is not an sr25519 public key: {e}")))?;
    let signature: Vec<u8> = if let Ok(text) = signature.extract::<String>() {
        match hex::decode(text.strip_prefix("0x").unwrap_or(&text)) {
            Ok(bytes) => bytes,
            Err(_) => return Ok(false),
        }
    } else {
        signature.extract::<Vec<u8>>()?
    };
    let Ok(signature) = Signature::from_bytes(&signature) else {
        return Ok(false);
    };
    let data = message_bytes(message)?;
    if public.verify_simple(CONTEXT, &data, &signature).is_ok() {
        return Ok(true);
    }
    let wrapped = [b"<Bytes>".as_slice(), &data, b"</Bytes>"].concat();
    Ok(public.verify_simple(CONTEXT, &wrapped, &signature).is_ok())
}

/// The message a PRISM request signs: `prism:{hotkey}:{nonce}:{timestamp}:{sha256(body) hex}`
/// (`checkpoint=True`: the `prism:checkpoint:` prefix of the checkpoint-upload route).
#[pyfunction]
#[pyo3(signature = (hotkey, nonce, timestamp, body, checkpoint=false))]
fn prism_message(
    hotkey: &str,
    nonce: &str,
    timestamp: &str,
    body: &[u8],
    checkpoint: bool,
) -> String {
    let digest = hex::encode(Sha256::digest(body));
    let prefix = if checkpoint {
        "prism:checkpoint"
    } else {
        "prism"
    };
    format!("{prefix}:{hotkey}:{nonce}:{timestamp}:{digest}")
}
