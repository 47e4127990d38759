//! voipbin
