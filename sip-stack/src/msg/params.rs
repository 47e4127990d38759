//! Semicolon parameters (`;branch=z9hG4bK1;rport;received=1.2.3.4`), read lazily and
//! without copying. Names compare case-insensitively (RFC 3261 section 7.3.1).

use super::grammar::trim_wsp;

/// The parameters of a header element or URI, as written after the first `;`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a>(pub &'a str);

impl<'a> Params<'a> {
    /// Each `(name, value)`; a flag parameter has no value.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> {
        self.0
            .split(';')
            .map(trim_wsp)
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((n, v)) => (trim_wsp(n), Some(trim_wsp(v))),
                None => (p, None),
            })
    }

    /// The parameter `name`: `None` when absent, `Some(None)` for a flag.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The value of parameter `name`, when it has one.
    pub fn value(&self, name: &str) -> Option<&'a str> {
        self.get(name).flatten()
    }

    /// Whether parameter `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::Params;

    #[test]
    fn flags_values_and_case() {
        let p = Params(" branch = z9hG4bK1 ;rport; Received=1.2.3.4;;");
        assert_eq!(p.value("BRANCH"), Some("z9hG4bK1"));
        assert_eq!(p.get("rport"), Some(None));
        assert_eq!(p.value("received"), Some("1.2.3.4"));
        assert!(!p.has("ttl"));
    }
}
