//! Character classes of the SIP grammar (RFC 3261 section 25.1) and small helpers
//! the parsers share.

/// `token` characters: alphanumerics and `-.!%*_+`'~`.
pub fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Whether `s` is a non-empty token.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Linear white space: space or horizontal tab.
pub fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Trims SP and HTAB on both sides.
pub fn trim_wsp(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

/// Splits a header value at commas that are outside quotes and angle brackets
/// (RFC 3261 section 7.3.1); each part is trimmed, empty parts are skipped.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    let bytes = value.as_bytes();
    let mut start = 0;
    let mut i = 0;
    let mut quoted = false;
    let mut angle = 0u32;
    std::iter::from_fn(move || {
        while i <= bytes.len() {
            let at_end = i == bytes.len();
            let b = if at_end { b',' } else { bytes[i] };
            match b {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b'<' if !quoted => angle += 1,
                b'>' if !quoted => angle = angle.saturating_sub(1),
                b',' if (!quoted && angle == 0) || at_end => {
                    let part = trim_wsp(&value[start..i.min(bytes.len())]);
                    i += 1;
                    start = i;
                    if !part.is_empty() {
                        return Some(part);
                    }
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        None
    })
}

/// Removes the quotes of a quoted-string and its backslash escapes; other text is
/// returned as it is.
pub fn unquote(s: &str) -> std::borrow::Cow<'_, str> {
    let s = trim_wsp(s);
    match s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) if inner.contains('\\') => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else {
                    out.push(c);
                }
            }
            std::borrow::Cow::Owned(out)
        }
        Some(inner) => std::borrow::Cow::Borrowed(inner),
        None => std::borrow::Cow::Borrowed(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_split_respects_quotes_and_brackets() {
        let v = r#""Doe, John" <sip:a@b;x=1,2>;q=1 , <sip:c@d>,,sip:e@f"#;
        let parts: Vec<&str> = split_list(v).collect();
        assert_eq!(
            parts,
            [r#""Doe, John" <sip:a@b;x=1,2>;q=1"#, "<sip:c@d>", "sip:e@f"]
        );
    }

    #[test]
    fn unquote_handles_escapes() {
        assert_eq!(unquote(r#""a \"b\" c""#), r#"a "b" c"#);
        assert_eq!(unquote("plain"), "plain");
    }
}
