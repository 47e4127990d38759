//! ai-bridge
