//! Telegram I/O: classifying incoming updates, long polling, delivering
//! actions, and the error policy for Bot API failures.

pub mod inbound;
pub mod outbound;
pub mod pacing;
pub mod policy;
pub mod polling;
