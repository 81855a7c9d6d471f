//! The value parsers of [`super`]: what can be checked in a typed value without the outside world
//! (URLs, member ids, durations, order tokens), so a typo is a usage error before anything runs.

use coalition_client::types::{MAX_ISSUE_POINTS, MAX_LOT_LIFETIME_SECS};
use coalition_core::record::{MemberId, SignedOrder};
use std::time::Duration;

/// An order token as typed, with the order it decodes to.
#[derive(Debug, Clone)]
pub(crate) struct OrderToken {
    /// The hex, trimmed.
    pub hex: String,
    /// The decoded, signature-checked order.
    pub order: SignedOrder,
}

/// Why a value on the command line was refused. clap prints it after "invalid value 'V' for
/// '--OPTION'"; the command then ends with exit code 2.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ArgError {
    /// `--node` is not an http(s) URL.
    #[error("{url:?} is not an http:// or https:// URL")]
    NotHttpUrl {
        /// The value given, trimmed.
        url: String,
    },
    /// A member id that is not 64 hex digits.
    #[error(transparent)]
    MemberIdHex(coalition_core::hash::HexError),
    /// A member id that is hex but not a usable ed25519 key.
    #[error("not a valid ed25519 public key")]
    WeakMemberKey,
    /// A duration `humantime` cannot read.
    #[error("{0} (examples: 90d, 12h, 30m, 45s)")]
    Duration(humantime::DurationError),
    /// A duration under one second.
    #[error("must be at least one second")]
    ZeroDuration,
    /// A lifetime longer than the node accepts.
    #[error("at most {max_days} days")]
    LongLifetime {
        /// The limit, in days.
        max_days: u64,
    },
    /// A duration in months or years, whose length is a matter of opinion.
    #[error("months and years have no fixed length; give days instead (365d)")]
    CalendarUnit,
    /// Points of an issue that are not a whole number in range.
    #[error("points are a whole number from 1 to {max} (the most one issue may carry)")]
    IssuePoints {
        /// The largest accepted.
        max: u64,
    },
    /// Points that are not a whole number of at least 1.
    #[error("points are a whole number, at least 1")]
    Points,
    /// An order token that is not hex or not a signed order.
    #[error(transparent)]
    OrderToken(coalition_client::order::TokenError),
    /// An order token whose member signature is wrong.
    #[error("the member's signature does not hold: {0}")]
    OrderSignature(coalition_core::crypto::SignatureError),
}

/// `--node`: an http(s) URL, trimmed, without a trailing `/`.
pub(super) fn parse_node_url(s: &str) -> Result<String, ArgError> {
    let s = s.trim();
    if !(s.starts_with("http://") || s.starts_with("https://")) {
        return Err(ArgError::NotHttpUrl { url: s.to_string() });
    }
    Ok(s.trim_end_matches('/').to_string())
}

/// `--member`: 64 hex digits that are a valid ed25519 public key.
pub(super) fn parse_member_id(s: &str) -> Result<MemberId, ArgError> {
    let id = MemberId::from_hex(s).map_err(ArgError::MemberIdHex)?;
    if !id.0.is_valid() {
        return Err(ArgError::WeakMemberKey);
    }
    Ok(id)
}

/// `--expires-in`: a `humantime` duration from one second to the node's longest lot lifetime, in
/// units of a fixed length (humantime reads `1y` as 365.25 days and `1M` as 30.44).
pub(super) fn parse_duration(s: &str) -> Result<Duration, ArgError> {
    let calendar = ["y", "year", "years", "M", "month", "months", "mo"];
    if s.split(|c: char| c.is_ascii_digit() || c.is_whitespace())
        .any(|unit| calendar.contains(&unit))
    {
        return Err(ArgError::CalendarUnit);
    }
    let d = humantime::parse_duration(s).map_err(ArgError::Duration)?;
    if d.as_secs() == 0 {
        return Err(ArgError::ZeroDuration);
    }
    if d.as_secs() > MAX_LOT_LIFETIME_SECS {
        return Err(ArgError::LongLifetime {
            max_days: MAX_LOT_LIFETIME_SECS / 86_400,
        });
    }
    Ok(d)
}

/// `--points` of an issue: 1 to the most one issue may carry (the node's own bound, checked
/// here so the message says it).
pub(super) fn parse_issue_points(s: &str) -> Result<u64, ArgError> {
    match parse_points(s) {
        Ok(n) if n <= MAX_ISSUE_POINTS => Ok(n),
        _ => Err(ArgError::IssuePoints {
            max: MAX_ISSUE_POINTS,
        }),
    }
}

/// `--points` of a redemption: at least 1 (the balance is the real bound).
pub(super) fn parse_points(s: &str) -> Result<u64, ArgError> {
    match s.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ArgError::Points),
    }
}

/// `--order`: a token that decodes to a signed order whose member signature holds.
pub(super) fn parse_order_token(s: &str) -> Result<OrderToken, ArgError> {
    let hex_text = s.trim();
    let order =
        coalition_client::order::parse_order_token(hex_text).map_err(ArgError::OrderToken)?;
    order.verify_signature().map_err(ArgError::OrderSignature)?;
    Ok(OrderToken {
        hex: hex_text.to_string(),
        order,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let secs = |s| parse_duration(s).ok().map(|d| d.as_secs());
        assert_eq!(secs("90d"), Some(90 * 86_400));
        assert_eq!(secs("12h"), Some(12 * 3_600));
        assert_eq!(secs("30m"), Some(30 * 60));
        assert_eq!(secs("45s"), Some(45));
        assert_eq!(secs("3650d"), Some(3650 * 86_400));
        for refused in ["1y", "2 years", "1M", "3months", "3651d", "0s"] {
            assert_eq!(secs(refused), None, "{refused}");
        }
        assert!(matches!(parse_duration("1y"), Err(ArgError::CalendarUnit)));
        assert!(matches!(
            parse_duration("20000d"),
            Err(ArgError::LongLifetime { max_days: 3650 })
        ));
        assert!(matches!(parse_duration("0s"), Err(ArgError::ZeroDuration)));
        assert_eq!(
            error_text(parse_duration("soon")),
            "expected number at 0 (examples: 90d, 12h, 30m, 45s)"
        );
        assert_eq!(
            error_text(parse_duration("500ms")),
            "must be at least one second"
        );
    }

    #[test]
    fn points() {
        assert_eq!(
            parse_issue_points("1000000000000").ok(),
            Some(MAX_ISSUE_POINTS)
        );
        for refused in ["0", "-1", "1.5", "1000000000001", ""] {
            assert!(
                matches!(
                    parse_issue_points(refused),
                    Err(ArgError::IssuePoints { .. })
                ),
                "{refused}"
            );
        }
        assert_eq!(parse_points("5000000000000").ok(), Some(5_000_000_000_000));
        assert!(matches!(parse_points("0"), Err(ArgError::Points)));
    }

    #[test]
    fn node_urls() {
        assert_eq!(
            parse_node_url("http://h:1/").ok().as_deref(),
            Some("http://h:1")
        );
        assert_eq!(
            error_text(parse_node_url(" h:1 ")),
            "\"h:1\" is not an http:// or https:// URL"
        );
    }

    #[test]
    fn member_ids() {
        let id = MemberId(coalition_core::crypto::Keypair::generate().public());
        assert_eq!(parse_member_id(&id.to_hex()).ok(), Some(id));
        assert_eq!(
            error_text(parse_member_id("abcd")),
            "expected 64 hex digits, got \"abcd\""
        );
        // The identity point is well-formed hex but a weak key.
        let mut weak = [0u8; 32];
        weak[0] = 1;
        assert_eq!(
            error_text(parse_member_id(&hex::encode(weak))),
            "not a valid ed25519 public key"
        );
    }

    #[test]
    fn order_tokens() {
        use coalition_core::crypto::Keypair;
        use coalition_core::record::{LotSpend, PartnerId, RedeemOrder};
        let key = Keypair::generate();
        let signed = RedeemOrder {
            member: MemberId(key.public()),
            member_seq: 0,
            redeemer: PartnerId(Keypair::generate().public()),
            points: 5,
            lots: vec![LotSpend {
                lot: coalition_core::hash::Hash([7; 32]),
                points: 5,
            }],
            time: 1_700_000_000,
        }
        .sign(&key);
        let good = coalition_client::order::order_token(&signed);
        let parsed = parse_order_token(&format!(" {good}\n")).ok();
        assert_eq!(parsed.map(|t| t.hex), Some(good.clone()));
        let mut bytes = hex::decode(&good).unwrap_or_default();
        if let Some(last) = bytes.last_mut() {
            *last ^= 0x80;
        }
        let bad = error_text(parse_order_token(&hex::encode(bytes)));
        assert!(
            bad.starts_with("the member's signature does not hold: "),
            "{bad}"
        );
        assert_eq!(
            error_text(parse_order_token("zz")),
            "the order token is not hex: Invalid character 'z' at position 0"
        );
    }

    /// The message clap shows after "invalid value ...".
    fn error_text<T>(r: Result<T, ArgError>) -> String {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    }
}
