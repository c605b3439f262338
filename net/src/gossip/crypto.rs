//! Sealing gossip datagrams with the pool's `encrypt` key (AES-GCM, random nonce prefixed).

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::aes::Aes192;
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce};
use rand::RngCore;

/// Bytes a sealed datagram adds: the nonce in front, the tag behind.
pub(crate) const OVERHEAD: usize = NONCE_LEN + 16;
const NONCE_LEN: usize = 12;

/// The AES-GCM cipher matching the key length (16, 24 or 32 bytes).
pub(crate) enum Cipher {
    A128(Box<Aes128Gcm>),
    A192(Box<AesGcm<Aes192, U12>>),
    A256(Box<Aes256Gcm>),
}

impl Cipher {
    /// Returns the cipher for `key`, or an error naming the accepted lengths.
    pub fn new(key: &[u8]) -> Result<Cipher, String> {
        let bad = |_| format!("key must be 16, 24 or 32 bytes, got {}", key.len());
        match key.len() {
            16 => Ok(Cipher::A128(Box::new(
                Aes128Gcm::new_from_slice(key).map_err(bad)?,
            ))),
            24 => Ok(Cipher::A192(Box::new(
                AesGcm::<Aes192, U12>::new_from_slice(key).map_err(bad)?,
            ))),
            32 => Ok(Cipher::A256(Box::new(
                Aes256Gcm::new_from_slice(key).map_err(bad)?,
            ))),
            n => Err(format!("key must be 16, 24 or 32 bytes, got {n}")),
        }
    }

    /// Returns `nonce || ciphertext || tag`.
    pub fn seal(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let n = Nonce::from_slice(&nonce);
        let sealed = match self {
            Cipher::A128(c) => c.encrypt(n, plain),
            Cipher::A192(c) => c.encrypt(n, plain),
            Cipher::A256(c) => c.encrypt(n, plain),
        }
        .ok()?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Some(out)
    }

    /// Returns the plaintext, or `None` when the datagram was not sealed with this key.
    pub fn open(&self, datagram: &[u8]) -> Option<Vec<u8>> {
        if datagram.len() < OVERHEAD {
            return None;
        }
        let (nonce, body) = datagram.split_at(NONCE_LEN);
        let n = Nonce::from_slice(nonce);
        match self {
            Cipher::A128(c) => c.decrypt(n, body),
            Cipher::A192(c) => c.decrypt(n, body),
            Cipher::A256(c) => c.decrypt(n, body),
        }
        .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_for_every_key_length() {
        for len in [16, 24, 32] {
            let key = vec![7u8; len];
            let c = Cipher::new(&key).unwrap();
            let sealed = c.seal(b"hello pool").unwrap();
            assert_eq!(sealed.len(), b"hello pool".len() + OVERHEAD);
            assert_eq!(c.open(&sealed).unwrap(), b"hello pool");
            let other = Cipher::new(&vec![8u8; len]).unwrap();
            assert!(other.open(&sealed).is_none());
        }
    }

    #[test]
    fn rejects_bad_key_lengths_and_short_datagrams() {
        assert!(Cipher::new(&[1u8; 15]).err().unwrap().contains("15"));
        let c = Cipher::new(&[1u8; 16]).unwrap();
        assert!(c.open(&[0u8; 5]).is_none());
        assert!(c.open(&[0u8; 40]).is_none());
    }
}
