//! The SIP message layer: parsing (zero-copy over [`bytes::Bytes`]), typed access to
//! the headers the stack uses, and building messages. Everything else in the crate
//! goes through this facade, so the parser can be replaced behind it.

pub mod error;
pub mod grammar;
pub mod header_name;
pub mod message;
pub mod method;
pub mod params;
pub mod parser;
pub mod salvage;
pub mod typed;
pub mod uri;
pub mod validate;
pub mod writer;

pub use error::ParseError;
pub use header_name::HeaderName;
pub use message::{Header, Message, StartLine};
pub use method::Method;
pub use params::Params;
pub use parser::{Frame, MAX_LINE, MAX_MESSAGE, frame, parse_datagram, parse_framed};
pub use typed::{CSeq, NameAddr, Via};
pub use uri::{Host, Scheme, Uri, is_absolute_uri};
pub use validate::check_request;
pub use writer::MessageBuilder;

#[cfg(test)]
mod tests;
