//! Header names: the ones the stack reads, with their compact forms (RFC 3261
//! section 7.3.3, and the RFCs that added more), matched case-insensitively. Every
//! other header is kept as it arrived and passed through unchanged.

/// Defines [`HeaderName`] from (variant, canonical spelling, compact form) rows.
macro_rules! header_names {
    ( $( $(#[$doc:meta])* $variant:ident = $name:literal $( / $compact:literal )? ; )* ) => {
        /// A header's name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum HeaderName {
            $( $(#[$doc])* $variant, )*
            /// Any other header; its spelling is kept with the header.
            Other,
        }

        impl HeaderName {
            /// Recognises a name in any case, long or compact.
            pub fn parse(name: &str) -> Self {
                if name.len() == 1 {
                    let c = name.as_bytes()[0].to_ascii_lowercase();
                    $( $( if c == $compact { return Self::$variant; } )? )*
                    return Self::Other;
                }
                $( if name.eq_ignore_ascii_case($name) { return Self::$variant; } )*
                Self::Other
            }

            /// The canonical spelling (empty for `Other`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $name, )*
                    Self::Other => "",
                }
            }

            /// The compact form, when there is one.
            pub fn compact(self) -> Option<char> {
                match self {
                    $( $( Self::$variant => Some($compact as char), )? )*
                    _ => None,
                }
            }
        }
    };
}

header_names! {
    /// RFC 3261 section 20.42.
    Via = "Via" / b'v';
    /// Section 20.20.
    From = "From" / b'f';
    /// Section 20.39.
    To = "To" / b't';
    /// Section 20.8.
    CallId = "Call-ID" / b'i';
    /// Section 20.16.
    CSeq = "CSeq";
    /// Section 20.10.
    Contact = "Contact" / b'm';
    /// Section 20.22.
    MaxForwards = "Max-Forwards";
    /// Section 20.14.
    ContentLength = "Content-Length" / b'l';
    /// Section 20.15.
    ContentType = "Content-Type" / b'c';
    /// Section 20.12.
    ContentEncoding = "Content-Encoding" / b'e';
    /// Section 20.34.
    Route = "Route";
    /// Section 20.30.
    RecordRoute = "Record-Route";
    /// Section 20.5.
    Allow = "Allow";
    /// Section 20.37.
    Supported = "Supported" / b'k';
    /// Section 20.32.
    Require = "Require";
    /// Section 20.29.
    ProxyRequire = "Proxy-Require";
    /// Section 20.40.
    Unsupported = "Unsupported";
    /// Section 20.7.
    Authorization = "Authorization";
    /// Section 20.28.
    ProxyAuthorization = "Proxy-Authorization";
    /// Section 20.44.
    WwwAuthenticate = "WWW-Authenticate";
    /// Section 20.27.
    ProxyAuthenticate = "Proxy-Authenticate";
    /// Section 20.19.
    Expires = "Expires";
    /// Section 20.23.
    MinExpires = "Min-Expires";
    /// Section 20.41.
    UserAgent = "User-Agent";
    /// Section 20.35.
    Server = "Server";
    /// Section 20.36.
    Subject = "Subject" / b's';
    /// Section 20.17.
    Date = "Date";
    /// Section 20.33.
    RetryAfter = "Retry-After";
    /// Section 20.38.
    Timestamp = "Timestamp";
    /// Section 20.1.
    Accept = "Accept";
    /// RFC 3326.
    Reason = "Reason";
    /// RFC 3262.
    RSeq = "RSeq";
    /// RFC 3262.
    RAck = "RAck";
    /// RFC 4028.
    SessionExpires = "Session-Expires" / b'x';
    /// RFC 4028.
    MinSe = "Min-SE";
    /// RFC 6665.
    Event = "Event" / b'o';
    /// RFC 6665.
    AllowEvents = "Allow-Events" / b'u';
    /// RFC 3515.
    ReferTo = "Refer-To" / b'r';
    /// RFC 3892.
    ReferredBy = "Referred-By" / b'b';
    /// RFC 3325.
    PAssertedIdentity = "P-Asserted-Identity";
    /// RFC 5806.
    Diversion = "Diversion";
}

impl HeaderName {
    /// Whether the header's value is a comma-separated list that may also be split
    /// over several header lines (RFC 3261 section 7.3.1).
    pub fn is_list(self) -> bool {
        matches!(
            self,
            Self::Via
                | Self::Contact
                | Self::Route
                | Self::RecordRoute
                | Self::Allow
                | Self::Supported
                | Self::Require
                | Self::ProxyRequire
                | Self::Unsupported
                | Self::Accept
                | Self::AllowEvents
                | Self::ContentEncoding
                | Self::PAssertedIdentity
                | Self::Diversion
        )
    }
}

#[cfg(test)]
mod tests {
    use super::HeaderName;

    #[test]
    fn long_compact_and_any_case() {
        assert_eq!(HeaderName::parse("via"), HeaderName::Via);
        assert_eq!(HeaderName::parse("V"), HeaderName::Via);
        assert_eq!(HeaderName::parse("CALL-id"), HeaderName::CallId);
        assert_eq!(HeaderName::parse("i"), HeaderName::CallId);
        assert_eq!(HeaderName::parse("l"), HeaderName::ContentLength);
        assert_eq!(HeaderName::parse("X-Custom"), HeaderName::Other);
        assert_eq!(HeaderName::parse("q"), HeaderName::Other);
        assert_eq!(HeaderName::Contact.compact(), Some('m'));
    }
}
