//! Request headers and the `x-ots-signature` of the Tablestore Tunnel API.
//!
//! Every tunnel request is `POST {endpoint}{uri}` with these headers:
//!
//! | header | value |
//! |---|---|
//! | `x-ots-date` | UTC ISO-8601 with milliseconds, `2024-01-01T00:00:00.000Z` |
//! | `x-ots-apiversion` | [`API_VERSION`] (`2018-04-01`) |
//! | `x-ots-instancename` | the instance name |
//! | `x-ots-accesskeyid` | the access key id |
//! | `x-ots-contentmd5` | `base64(md5(body))` of the raw 16-byte digest |
//! | `x-ots-ststoken` | the STS token, only when one is configured |
//! | `x-ots-signature` | see below |
//!
//! The signature is `base64(HMAC-SHA1(secret, string_to_sign))` where
//! `string_to_sign = uri + "\nPOST\n\n"` followed by one
//! `lowercase(name):trim(value)\n` line per `x-ots-*` header other than
//! `x-ots-signature`, sorted by that line.
//!
//! [`request_headers`] builds the headers for a client;
//! [`verify_request`] checks them on the server (emulator) side.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;

/// `x-ots-apiversion` of the tunnel API.
pub const API_VERSION: &str = "2018-04-01";
/// Header name: request date.
pub const HEADER_DATE: &str = "x-ots-date";
/// Header name: API version.
pub const HEADER_API_VERSION: &str = "x-ots-apiversion";
/// Header name: instance name.
pub const HEADER_INSTANCE_NAME: &str = "x-ots-instancename";
/// Header name: access key id.
pub const HEADER_ACCESS_KEY_ID: &str = "x-ots-accesskeyid";
/// Header name: base64 MD5 of the body.
pub const HEADER_CONTENT_MD5: &str = "x-ots-contentmd5";
/// Header name: STS security token.
pub const HEADER_STS_TOKEN: &str = "x-ots-ststoken";
/// Header name: the request signature.
pub const HEADER_SIGNATURE: &str = "x-ots-signature";
/// Response header name: the service's request id.
pub const HEADER_REQUEST_ID: &str = "x-ots-requestid";

/// The credentials a request is signed with.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Access key id (sent in clear as `x-ots-accesskeyid`).
    pub access_key_id: String,
    /// Access key secret (never sent; the HMAC key).
    pub access_key_secret: String,
    /// Optional STS token (sent as `x-ots-ststoken` and signed).
    pub sts_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field("sts_token", &self.sts_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `base64(md5(body))` over the raw 16-byte digest.
pub fn content_md5(body: &[u8]) -> String {
    BASE64.encode(Md5::digest(body))
}

/// Format a time as `x-ots-date` wants it: `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
///
/// Times before the Unix epoch are clamped to the epoch.
pub fn format_date(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let millis = since.subsec_millis();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Convert days since 1970-01-01 to a proleptic Gregorian (year, month, day),
/// using 400-year eras.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // shift the epoch to 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 = March
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The canonical string signed for `uri` given the request's headers (any
/// case, any order; non-`x-ots-*` headers and `x-ots-signature` are ignored).
pub fn string_to_sign<N: AsRef<str>, V: AsRef<str>>(uri: &str, headers: &[(N, V)]) -> String {
    let mut lines: Vec<String> = headers
        .iter()
        .filter_map(|(name, value)| {
            let name = name.as_ref().trim().to_ascii_lowercase();
            (name.starts_with("x-ots-") && name != HEADER_SIGNATURE)
                .then(|| format!("{name}:{}", value.as_ref().trim()))
        })
        .collect();
    lines.sort();
    let mut out =
        String::with_capacity(uri.len() + 8 + lines.iter().map(|l| l.len() + 1).sum::<usize>());
    out.push_str(uri);
    out.push_str("\nPOST\n\n");
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `base64(HMAC-SHA1(secret, string_to_sign(uri, headers)))`.
pub fn signature<N: AsRef<str>, V: AsRef<str>>(
    access_key_secret: &str,
    uri: &str,
    headers: &[(N, V)],
) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(access_key_secret.as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(string_to_sign(uri, headers).as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// All headers of a tunnel request, `x-ots-signature` last.
///
/// `date` is the `x-ots-date` value (see [`format_date`]); passing it in keeps
/// this function pure and testable.
pub fn request_headers(
    uri: &str,
    body: &[u8],
    instance_name: &str,
    credentials: &Credentials,
    date: &str,
) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        (HEADER_DATE, date.to_owned()),
        (HEADER_API_VERSION, API_VERSION.to_owned()),
        (HEADER_INSTANCE_NAME, instance_name.to_owned()),
        (HEADER_ACCESS_KEY_ID, credentials.access_key_id.clone()),
        (HEADER_CONTENT_MD5, content_md5(body)),
    ];
    if let Some(token) = &credentials.sts_token {
        headers.push((HEADER_STS_TOKEN, token.clone()));
    }
    let sig = signature(&credentials.access_key_secret, uri, &headers);
    headers.push((HEADER_SIGNATURE, sig));
    headers
}

/// Why [`verify_request`] rejected a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// A required header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// `x-ots-contentmd5` does not match the body.
    #[error("x-ots-contentmd5 does not match the body")]
    ContentMd5Mismatch,
    /// The access key id is unknown to the verifier.
    #[error("unknown access key id {0}")]
    UnknownAccessKey(String),
    /// The signature does not match.
    #[error("signature mismatch")]
    SignatureMismatch,
}

/// The facts a verified request carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRequest {
    /// `x-ots-accesskeyid`.
    pub access_key_id: String,
    /// `x-ots-instancename`.
    pub instance_name: String,
    /// `x-ots-apiversion`.
    pub api_version: String,
    /// `x-ots-ststoken`, when present.
    pub sts_token: Option<String>,
}

/// Server-side check of a request's headers: required headers present,
/// content MD5 matching `body`, and a signature made with the secret that
/// `secret_for` returns for the request's access key id.
pub fn verify_request<N: AsRef<str>, V: AsRef<str>>(
    uri: &str,
    headers: &[(N, V)],
    body: &[u8],
    secret_for: impl FnOnce(&str) -> Option<String>,
) -> Result<VerifiedRequest, SignError> {
    let get = |wanted: &'static str| {
        headers
            .iter()
            .find(|(n, _)| n.as_ref().trim().eq_ignore_ascii_case(wanted))
            .map(|(_, v)| v.as_ref().trim().to_owned())
    };
    let need = |wanted: &'static str| get(wanted).ok_or(SignError::MissingHeader(wanted));
    need(HEADER_DATE)?;
    let api_version = need(HEADER_API_VERSION)?;
    let instance_name = need(HEADER_INSTANCE_NAME)?;
    let access_key_id = need(HEADER_ACCESS_KEY_ID)?;
    let md5 = need(HEADER_CONTENT_MD5)?;
    let given = need(HEADER_SIGNATURE)?;
    if md5 != content_md5(body) {
        return Err(SignError::ContentMd5Mismatch);
    }
    let secret = secret_for(&access_key_id)
        .ok_or_else(|| SignError::UnknownAccessKey(access_key_id.clone()))?;
    let expected = signature(&secret, uri, headers);
    if !constant_time_eq(expected.as_bytes(), given.as_bytes()) {
        return Err(SignError::SignatureMismatch);
    }
    Ok(VerifiedRequest {
        access_key_id,
        instance_name,
        api_version,
        sts_token: get(HEADER_STS_TOKEN),
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const BODY: [u8; 4] = [0x0a, 0x02, 0x74, 0x31];
    const DATE: &str = "2024-01-01T00:00:00.000Z";

    fn creds(sts: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "akid".into(),
            access_key_secret: "secret".into(),
            sts_token: sts.map(str::to_owned),
        }
    }

    #[test]
    fn content_md5_vector() {
        assert_eq!(content_md5(&BODY), "sNnO8EJ2mwgU0Z/k1zqY2g==");
    }

    /// The vector is reproduced by uri `/tunnel/connect`, with
    /// `x-ots-apiversion: 2018-04-01` included and no STS token: the signed
    /// lines are accesskeyid, apiversion, contentmd5, date, instancename.
    #[test]
    fn signature_vector() {
        let headers = request_headers("/tunnel/connect", &BODY, "inst", &creds(None), DATE);
        let get = |n| {
            headers
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get(HEADER_CONTENT_MD5), Some("sNnO8EJ2mwgU0Z/k1zqY2g=="));
        assert_eq!(get(HEADER_SIGNATURE), Some("5os0vahhb13Apn7eIMu1SFCVvt4="));
        assert_eq!(get(HEADER_API_VERSION), Some(API_VERSION));
        assert_eq!(
            string_to_sign("/tunnel/connect", &headers),
            "/tunnel/connect\nPOST\n\n\
             x-ots-accesskeyid:akid\n\
             x-ots-apiversion:2018-04-01\n\
             x-ots-contentmd5:sNnO8EJ2mwgU0Z/k1zqY2g==\n\
             x-ots-date:2024-01-01T00:00:00.000Z\n\
             x-ots-instancename:inst\n"
        );
    }

    #[test]
    fn string_to_sign_normalises_names_values_and_order() {
        let headers = [
            ("X-OTS-Date", "  d  "),
            ("Content-Type", "ignored"),
            ("x-ots-signature", "ignored"),
            ("x-ots-AccessKeyId", "a"),
        ];
        assert_eq!(
            string_to_sign("/u", &headers),
            "/u\nPOST\n\nx-ots-accesskeyid:a\nx-ots-date:d\n"
        );
    }

    #[test]
    fn sts_token_is_sent_and_signed() {
        let with = request_headers("/tunnel/connect", &BODY, "inst", &creds(Some("tok")), DATE);
        assert!(
            with.iter()
                .any(|(k, v)| *k == HEADER_STS_TOKEN && v == "tok")
        );
        let sig_with = &with.last().unwrap().1;
        assert_ne!(sig_with, "5os0vahhb13Apn7eIMu1SFCVvt4=");
        let verified =
            verify_request("/tunnel/connect", &with, &BODY, |_| Some("secret".into())).unwrap();
        assert_eq!(verified.sts_token.as_deref(), Some("tok"));
    }

    #[test]
    fn verify_accepts_good_and_rejects_tampered_requests() {
        let headers = request_headers("/tunnel/connect", &BODY, "inst", &creds(None), DATE);
        let secret = |id: &str| (id == "akid").then(|| "secret".to_owned());
        let ok = verify_request("/tunnel/connect", &headers, &BODY, secret).unwrap();
        assert_eq!(ok.access_key_id, "akid");
        assert_eq!(ok.instance_name, "inst");
        assert_eq!(ok.api_version, API_VERSION);

        assert_eq!(
            verify_request("/tunnel/connect", &headers, b"other", secret),
            Err(SignError::ContentMd5Mismatch)
        );
        assert_eq!(
            verify_request("/tunnel/heartbeat", &headers, &BODY, secret),
            Err(SignError::SignatureMismatch)
        );
        assert_eq!(
            verify_request("/tunnel/connect", &headers, &BODY, |_| Some("wrong".into())),
            Err(SignError::SignatureMismatch)
        );
        assert_eq!(
            verify_request("/tunnel/connect", &headers, &BODY, |_| None),
            Err(SignError::UnknownAccessKey("akid".into()))
        );
        let without_sig: Vec<_> = headers
            .iter()
            .filter(|(k, _)| *k != HEADER_SIGNATURE)
            .cloned()
            .collect();
        assert_eq!(
            verify_request("/tunnel/connect", &without_sig, &BODY, secret),
            Err(SignError::MissingHeader(HEADER_SIGNATURE))
        );
    }

    #[test]
    fn date_format() {
        assert_eq!(format_date(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2024-01-01T00:00:00Z = 1704067200
        let t = UNIX_EPOCH + Duration::from_millis(1_704_067_200_000);
        assert_eq!(format_date(t), DATE);
        // leap day, with milliseconds: 2024-02-29T23:59:59.123Z
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_123);
        assert_eq!(format_date(t), "2024-02-29T23:59:59.123Z");
        // 2000-03-01T12:34:56.007Z = 951914096
        let t = UNIX_EPOCH + Duration::from_millis(951_914_096_007);
        assert_eq!(format_date(t), "2000-03-01T12:34:56.007Z");
    }

    #[test]
    fn credentials_debug_redacts_secrets() {
        let c = Credentials {
            access_key_id: "akid".into(),
            access_key_secret: "s3cr3t".into(),
            sts_token: Some("t0k3n".into()),
        };
        let s = format!("{c:?}");
        assert!(s.contains("akid"), "{s}");
        assert!(!s.contains("s3cr3t") && !s.contains("t0k3n"), "{s}");
    }
}
