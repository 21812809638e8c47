//! Writing to the host's structured log, which tags each line with the
//! flow, its version and the update being handled.
//!
//! ```
//! flowbot_sdk::log::info!("saved workout {} with {} sets", 3, 12);
//! ```
//!
//! On targets other than `wasm32`, such as native unit tests, lines go to
//! standard error instead, because the host import exists only inside a
//! component.

pub use crate::bindings::flowbot::flow::host::LogLevel as Level;

/// Writes one line to the host's log at `level`.
///
/// Text that users wrote belongs at debug or trace level only.
pub fn write(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::flowbot::flow::host::log(level, message);

    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{}] {message}", level_name(level));
}

/// Returns the lower-case name of a level, as used in log lines.
pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log_at_level {
    ($level:ident, $($arg:tt)+) => {
        $crate::log::write($crate::log::Level::$level, &::std::format!($($arg)+))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log_trace {
    ($($arg:tt)+) => { $crate::__log_at_level!(Trace, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log_debug {
    ($($arg:tt)+) => { $crate::__log_at_level!(Debug, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log_info {
    ($($arg:tt)+) => { $crate::__log_at_level!(Info, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log_warn {
    ($($arg:tt)+) => { $crate::__log_at_level!(Warn, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log_error {
    ($($arg:tt)+) => { $crate::__log_at_level!(Error, $($arg)+) };
}

/// Writes a formatted line to the host's log at trace level.
pub use crate::__log_trace as trace;

/// Writes a formatted line to the host's log at debug level.
pub use crate::__log_debug as debug;

/// Writes a formatted line to the host's log at info level.
pub use crate::__log_info as info;

/// Writes a formatted line to the host's log at warn level.
pub use crate::__log_warn as warn;

/// Writes a formatted line to the host's log at error level.
pub use crate::__log_error as error;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_are_lower_case() {
        assert_eq!(level_name(Level::Trace), "trace");
        assert_eq!(level_name(Level::Debug), "debug");
        assert_eq!(level_name(Level::Info), "info");
        assert_eq!(level_name(Level::Warn), "warn");
        assert_eq!(level_name(Level::Error), "error");
    }

    #[test]
    fn macros_format_their_arguments() {
        // Natively the lines go to standard error, so this test only checks
        // that every macro expands and formats.
        trace!("trace {}", 1);
        debug!("debug {}", 2);
        info!("info {}", 3);
        warn!("warn {}", 4);
        error!("error {}", 5);
    }
}
