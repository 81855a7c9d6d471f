//! The file itself: a [`Sealed`] wallet as the JSON document described in [`super`], and the checks
//! that tell a damaged or foreign file (with what is wrong) from a wallet of a newer version.

use super::error::{CorruptReason, Problem};
use super::kdf::{self, KdfCost, SALT_LEN};
use super::seal::{Sealed, CIPHER, NONCE_LEN, TAG_LEN};
use super::{FORMAT, FORMAT_VERSION, SECRET_LEN};
use coalition_core::hash::Hash;
use coalition_core::record::MemberId;
use serde::{Deserialize, Serialize};

/// Domain tag of the checksum.
const CHECKSUM_TAG: &[u8] = b"coalition/wallet/v1/checksum";

/// The file's JSON form.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WalletFile {
    format: String,
    version: u32,
    member: String,
    kdf: KdfSection,
    cipher: String,
    salt: String,
    nonce: String,
    ciphertext: String,
    checksum: String,
}

/// The `kdf` object of the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfSection {
    algorithm: String,
    version: u32,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
}

impl Sealed {
    /// The file's bytes.
    pub(super) fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut bytes = serde_json::to_vec_pretty(&self.to_file())?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Parses and checks a file's bytes (everything but the passphrase).
    pub(super) fn parse(bytes: &[u8]) -> Result<Sealed, Problem> {
        let file = read_file(bytes)?;
        let cost = check_algorithms(&file)?;
        let member = parse_member(&file.member)?;
        let salt = fixed_hex::<SALT_LEN>("salt", &file.salt)?;
        let nonce = fixed_hex::<NONCE_LEN>("nonce", &file.nonce)?;
        let ciphertext: [u8; SECRET_LEN + TAG_LEN] = fixed_hex("ciphertext", &file.ciphertext)?;
        let sealed = Sealed {
            member,
            cost,
            salt,
            nonce,
            ciphertext: ciphertext.to_vec(),
        };
        let checksum = Hash::from_hex(&file.checksum).map_err(CorruptReason::ChecksumHex)?;
        if sealed.checksum() != checksum {
            return Err(CorruptReason::ChecksumMismatch.into());
        }
        Ok(sealed)
    }

    /// `blake3(tag ‖ header ‖ nonce ‖ ciphertext)`.
    fn checksum(&self) -> Hash {
        let mut bytes = self.header();
        bytes.extend_from_slice(&self.nonce);
        bytes.extend_from_slice(&self.ciphertext);
        Hash::tagged(CHECKSUM_TAG, &bytes)
    }

    /// The JSON document of this wallet.
    fn to_file(&self) -> WalletFile {
        WalletFile {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            member: self.member.to_hex(),
            kdf: KdfSection {
                algorithm: kdf::ALGORITHM.into(),
                version: kdf::VERSION,
                memory_kib: self.cost.memory_kib,
                iterations: self.cost.iterations,
                parallelism: self.cost.parallelism,
            },
            cipher: CIPHER.into(),
            salt: hex::encode(self.salt),
            nonce: hex::encode(self.nonce),
            ciphertext: hex::encode(&self.ciphertext),
            checksum: self.checksum().to_hex(),
        }
    }
}

/// The JSON document in `bytes`. The format and version are looked at first, so a newer wallet is
/// reported as such rather than as damaged because its fields differ.
fn read_file(bytes: &[u8]) -> Result<WalletFile, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(CorruptReason::Empty.into());
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(CorruptReason::NotJson)?;
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(CorruptReason::NotAWallet.into());
    }
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(FORMAT_VERSION) => {}
        Some(v) => return Err(Problem::Unsupported(v)),
        None => return Err(CorruptReason::NoVersion.into()),
    }
    serde_json::from_value(value).map_err(|e| CorruptReason::Fields(e).into())
}

/// The key derivation and cipher of `file`, which must be this build's; the cost within bounds.
fn check_algorithms(file: &WalletFile) -> Result<KdfCost, CorruptReason> {
    if file.kdf.algorithm != kdf::ALGORITHM || file.kdf.version != kdf::VERSION {
        return Err(CorruptReason::UnknownKdf {
            algorithm: file.kdf.algorithm.clone(),
            version: file.kdf.version,
        });
    }
    if file.cipher != CIPHER {
        return Err(CorruptReason::UnknownCipher {
            cipher: file.cipher.clone(),
        });
    }
    let cost = KdfCost {
        memory_kib: file.kdf.memory_kib,
        iterations: file.kdf.iterations,
        parallelism: file.kdf.parallelism,
    };
    cost.check().map_err(CorruptReason::KdfCost)?;
    Ok(cost)
}

/// The `member` field: a valid public key in hex.
fn parse_member(hex_text: &str) -> Result<MemberId, CorruptReason> {
    let member = MemberId::from_hex(hex_text).map_err(CorruptReason::MemberHex)?;
    if !member.0.is_valid() {
        return Err(CorruptReason::WeakMember);
    }
    Ok(member)
}

/// A binary field of exactly `N` bytes, in hex.
fn fixed_hex<const N: usize>(field: &'static str, s: &str) -> Result<[u8; N], CorruptReason> {
    let bytes = hex::decode(s).map_err(|cause| CorruptReason::NotHex { field, cause })?;
    let len = bytes.len();
    bytes.try_into().map_err(|_| CorruptReason::Length {
        field,
        len,
        expected: N,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wallet::seal::sealed_for_test;

    #[test]
    fn round_trip_through_bytes() {
        let (key, s) = sealed_for_test("correct horse");
        let bytes = s.to_bytes().expect("serialize");
        let back = Sealed::parse(&bytes).expect("parse what we wrote");
        assert_eq!(back, s);
        assert_eq!(back.member(), MemberId(key.public()));
        let opened = back
            .open(b"correct horse")
            .expect("open with the right passphrase");
        assert_eq!(opened.secret_bytes(), key.secret_bytes());
    }

    #[test]
    fn every_single_byte_corruption_of_the_ciphertext_is_caught_by_the_checksum() {
        let (_, s) = sealed_for_test("pw");
        let bytes = s.to_bytes().expect("serialize");
        for i in 0..s.ciphertext.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut ciphertext = s.ciphertext.clone();
                ciphertext[i] ^= mask;
                let mut file = s.to_file();
                file.ciphertext = hex::encode(&ciphertext);
                let text = serde_json::to_vec(&file).expect("serialize");
                assert!(
                    matches!(
                        Sealed::parse(&text),
                        Err(Problem::Corrupt(CorruptReason::ChecksumMismatch))
                    ),
                    "byte {i} mask {mask:#x} not caught by the checksum"
                );
            }
        }
        assert!(Sealed::parse(&bytes).is_ok());
    }

    #[test]
    fn truncated_or_garbage_files_are_corrupt() {
        let (_, s) = sealed_for_test("pw");
        let bytes = s.to_bytes().expect("serialize");
        // Every strict prefix, short of the final newline, is invalid.
        for cut in 0..bytes.len() - 1 {
            assert!(
                matches!(Sealed::parse(&bytes[..cut]), Err(Problem::Corrupt(_))),
                "prefix of {cut} bytes accepted"
            );
        }
        for junk in [
            &b""[..],
            b"   ",
            b"{}",
            b"null",
            b"\xff\xfe",
            b"{\"format\":\"coalition-wallet\"}",
        ] {
            assert!(matches!(Sealed::parse(junk), Err(Problem::Corrupt(_))));
        }
    }

    #[test]
    fn every_single_byte_change_of_the_file_is_caught_before_decryption() {
        let (_, s) = sealed_for_test("pw");
        let bytes = s.to_bytes().expect("serialize");
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            // Flipping the low bit never changes only the case of a hex digit, and turns JSON
            // whitespace and punctuation into invalid characters: each such edit changes meaning.
            assert!(
                Sealed::parse(&bad).is_err(),
                "byte {i} ({:?}) change accepted",
                bytes[i] as char
            );
        }
    }

    #[test]
    fn newer_versions_are_named() {
        let (_, s) = sealed_for_test("pw");
        let mut v: serde_json::Value = serde_json::to_value(s.to_file()).expect("to value");
        v["version"] = serde_json::json!(2);
        v["new_field"] = serde_json::json!(true);
        let text = serde_json::to_vec(&v).expect("serialize");
        assert!(matches!(Sealed::parse(&text), Err(Problem::Unsupported(2))));
    }

    /// What each edit of a good file is reported as: the text after "wallet X is damaged or not a
    /// coalition wallet: ".
    #[test]
    fn damage_is_described() {
        let (_, s) = sealed_for_test("pw");
        let good: serde_json::Value = serde_json::to_value(s.to_file()).expect("to value");
        let edit = |field: &str, value: serde_json::Value| {
            let mut v = good.clone();
            match field.strip_prefix("kdf.") {
                Some(k) => v["kdf"][k] = value,
                None => v[field] = value,
            }
            let text = serde_json::to_vec(&v).expect("serialize");
            match Sealed::parse(&text) {
                Err(Problem::Corrupt(reason)) => reason.to_string(),
                other => format!("not corrupt: {other:?}"),
            }
        };
        use serde_json::json;
        let cases = [
            (
                edit("format", json!("other")),
                "no \"format\": \"coalition-wallet\" field",
            ),
            (edit("version", json!("1")), "no format version"),
            (
                edit("salt", json!(null)),
                "invalid type: null, expected a string",
            ),
            (
                edit("kdf.algorithm", json!("scrypt")),
                "unknown key derivation scrypt version 19",
            ),
            (
                edit("kdf.version", json!(16)),
                "unknown key derivation argon2id version 16",
            ),
            (edit("cipher", json!("aes")), "unknown cipher \"aes\""),
            (
                edit("kdf.memory_kib", json!(1)),
                "kdf memory 1 KiB is outside 8..=4194304",
            ),
            (
                edit("member", json!("zz")),
                "member: expected 64 hex digits, got \"zz\"",
            ),
            (
                edit("member", json!(format!("01{}", "00".repeat(31)))),
                "member is not a valid ed25519 key",
            ),
            (
                edit("salt", json!("xyz")),
                "salt is not hex (Odd number of digits)",
            ),
            (
                edit("nonce", json!("00".repeat(10))),
                "nonce is 10 bytes, expected 24",
            ),
            (
                edit("ciphertext", json!("00".repeat(40))),
                "ciphertext is 40 bytes, expected 48",
            ),
            (
                edit("checksum", json!("q")),
                "checksum: expected 64 hex digits, got \"q\"",
            ),
            (
                edit("checksum", json!("00".repeat(32))),
                "checksum mismatch (the file was truncated or edited)",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        let text = |bytes: &[u8]| match Sealed::parse(bytes) {
            Err(Problem::Corrupt(reason)) => reason.to_string(),
            other => format!("not corrupt: {other:?}"),
        };
        assert_eq!(text(b" \n"), "the file is empty");
        assert_eq!(
            text(b"{nope"),
            "not valid JSON (key must be a string at line 1 column 2)"
        );
        let mut extra = good.clone();
        extra["extra"] = serde_json::json!(1);
        assert_eq!(
            text(&serde_json::to_vec(&extra).expect("serialize")),
            "unknown field `extra`, expected one of `format`, `version`, `member`, `kdf`, `cipher`, \
`salt`, `nonce`, `ciphertext`, `checksum`"
        );
    }
}
