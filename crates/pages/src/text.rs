//! Formatting for people, and scrubbing of free text (error messages, findings) so that no
//! filesystem path, secret or database URL reaches a page.

use std::sync::LazyLock;

use regex::Regex;

/// `ms` (Unix milliseconds) as `2026-12-07 17:20:05 UTC`, and as the `datetime` attribute
/// (`2026-12-07T17:20:05Z`).
pub fn time(ms: i64) -> (String, String) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    (
        format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02} UTC"),
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z"),
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A score with four decimals (`n/a` when missing or not finite).
pub fn score(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.4}"),
        _ => "n/a".into(),
    }
}

/// `± 0.0040`, or nothing.
pub fn uncertainty(v: Option<f64>) -> Option<String> {
    v.filter(|v| v.is_finite()).map(|v| format!("± {v:.4}"))
}

/// A share 0-1 as a percentage with one decimal.
pub fn percent(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1} %", v * 100.0)
    } else {
        "n/a".into()
    }
}

/// A byte count as `1.4 MB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

static URL_WITH_SECRET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s/@]*@[^\s]*").expect("static regex")
});
static DB_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:postgres|postgresql|sqlite|mysql|redis|file):[^\s]*")
        .expect("static regex")
});
static SECRET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)\b(token|secret|password|passwd|api[_-]?key|access[_-]?key|private[_-]?key|authorization)["']?\s*[:=]\s*("[^"]*"|'[^']*'|bearer\s+[^\s,;)\]}]+|[^\s,;)\]}]+)"#,
    )
    .expect("static regex")
});
static BEARER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]+").expect("static regex"));
static PATH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:~|\.{1,2})?(?:/[\w.\-@+%=]+){2,}/?|(?:~|\.{1,2})/[\w.\-@+%=]+|\b[A-Za-z]:\\[^\s]*",
    )
    .expect("static regex")
});

/// `text` with database URLs, URLs carrying credentials, `key=value` secrets and filesystem
/// paths removed: a path keeps only its last component (`…/adapter.safetensors`), a secret only
/// its name (`token=…`). For error messages and findings, which may quote any of those.
pub fn scrub(text: &str) -> String {
    let t = URL_WITH_SECRET.replace_all(text, "(a URL with credentials)");
    let t = DB_URL.replace_all(&t, "(a database URL)");
    let t = SECRET.replace_all(&t, "${1}=…");
    let t = BEARER.replace_all(&t, "bearer …");
    let t = PATH.replace_all(&t, |c: &regex::Captures<'_>| {
        let whole = &c[0];
        let last = whole
            .trim_end_matches(['/', '\\'])
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or("");
        if last.is_empty() {
            "…".to_string()
        } else {
            format!("…/{last}")
        }
    });
    t.into_owned()
}

/// Whether `s` is a safe id for a URL path segment: 1-128 of `[A-Za-z0-9._:-]`, not `.`/`..`.
pub fn is_safe_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

/// Whether `s` is a plain file name: no directory part, no `..`, no control characters.
pub fn is_plain_file_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s != "."
        && s != ".."
        && !s.contains(['/', '\\', '\0'])
        && !s.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(time(0).0, "1970-01-01 00:00:00 UTC");
        // 2026-12-07 17:20:05 UTC.
        assert_eq!(time(1_796_664_005_000).1, "2026-12-07T17:20:05Z");
        // A leap day and the end of a year.
        assert_eq!(time(951_782_400_000).0, "2000-02-29 00:00:00 UTC");
        assert_eq!(time(1_735_689_599_000).0, "2024-12-31 23:59:59 UTC");
        assert_eq!(time(-1000).0, "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn scrub_removes_paths_secrets_and_urls() {
        let s = scrub(
            "cannot read /home/op/.assay/keys/hot.json (token=sk-live-123, password: \"hunter 2\") \
             Authorization: Bearer abc.def, via postgres://assay:pw@db:5432/assay and https://u:p@host/x; see ./runs/a/b.log, ~/x.txt, C:\\Users\\op\\k.txt",
        );
        for leak in [
            "/home",
            "op/.assay",
            "sk-live-123",
            "hunter",
            "pw@db",
            "u:p@",
            "abc.def",
            "runs/a",
            "~/x",
            "Users",
        ] {
            assert!(!s.contains(leak), "{leak} leaked: {s}");
        }
        assert!(s.contains("…/hot.json"), "{s}");
        assert!(s.contains("token=…"), "{s}");
        assert!(s.contains("…/b.log"), "{s}");
    }

    #[test]
    fn scrub_keeps_honest_text() {
        for honest in [
            "the loss went up from 2.31 to 2.45 after step 300",
            "97 % similar to submission 8f2c (static check, threshold 96 %)",
            "weights sum to 1.000002; 3/4 tasks scored",
            "out of memory on cuda:0 while evaluating task arc_easy",
            "session 5 ended; 512 tokens: signature: bad length",
        ] {
            assert_eq!(scrub(honest), honest);
        }
    }

    #[test]
    fn ids_and_file_names_are_checked() {
        assert!(is_safe_id("0b9e-4c1a_x.y:1"));
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "<x>",
            "a%2fb",
            &"a".repeat(129),
        ] {
            assert!(!is_safe_id(bad), "{bad}");
        }
        assert!(is_plain_file_name("adapter.safetensors"));
        for bad in ["", "..", "../x", "a/b", "a\\b", "a\nb"] {
            assert!(!is_plain_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(score(Some(0.81234)), "0.8123");
        assert_eq!(score(Some(f64::NAN)), "n/a");
        assert_eq!(uncertainty(Some(0.004)).as_deref(), Some("± 0.0040"));
        assert_eq!(percent(0.375), "37.5 %");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_400_000), "1.4 MB");
    }
}
