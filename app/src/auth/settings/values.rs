//! Reading and printing one variable's text: shared by every settings table (the HTTP server's too).

use std::time::Duration;

/// The items of a comma-separated list, trimmed; empty ones are skipped.
pub fn items(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|item| !item.is_empty())
}

pub fn on_off(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        other => Err(format!("{other:?} is neither on nor off")),
    }
}

/// A whole number from `min` to `max`.
pub fn number(text: &str, min: u32, max: u32) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("{text:?} is not a whole number from {min} to {max}")),
    }
}

/// Seconds, as [`number`] (at most ten years).
pub fn secs(text: &str, min: u32) -> Result<Duration, String> {
    // Ten years is plenty and keeps every millisecond sum far from overflowing.
    number(text, min, 10 * 365 * 86_400).map(|n| Duration::from_secs(n.into()))
}

pub fn show_secs(duration: Duration) -> String {
    duration.as_secs().to_string()
}

pub(super) fn show_on_off(on: bool) -> String {
    if on { "on" } else { "off" }.into()
}

/// A secret is only said to be there.
pub(super) fn show_set(set: bool) -> String {
    if set { "(set)" } else { "(none)" }.into()
}

/// A list as `check-config` prints it: comma-separated, or `(none)`.
pub fn show_list<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "(none)".into();
    }
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}
