//! sip-stack
