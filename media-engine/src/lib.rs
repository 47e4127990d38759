//! media-engine
