//! New builds of a built flow component, made without compiling, for the
//! integration tests and the benchmark: a patched version string, an
//! appended custom section, and a drop into a watched folder the way
//! `scripts/build-flows` writes one.

use std::path::Path;

use anyhow::Context;
use sha2::{Digest, Sha256};

/// Returns a copy of `component` with every occurrence of `from` replaced by
/// `to`, which must have the same length; fails when `from` does not occur.
/// The tally flow keeps its version in one string, so this makes a new
/// build of it with another version and digest.
pub fn patch_bytes(component: &[u8], from: &str, to: &str) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(
        from.len() == to.len(),
        "{from:?} and {to:?} differ in length"
    );
    let (from, to) = (from.as_bytes(), to.as_bytes());
    let mut patched = component.to_vec();
    let mut found = 0;
    let mut index = 0;
    while index + from.len() <= patched.len() {
        if &patched[index..index + from.len()] == from {
            patched[index..index + from.len()].copy_from_slice(to);
            found += 1;
            index += from.len();
        } else {
            index += 1;
        }
    }
    anyhow::ensure!(
        found > 0,
        "{:?} not found in the component",
        String::from_utf8_lossy(from)
    );
    Ok(patched)
}

/// Returns `component` with a custom section `name` holding `payload`
/// appended: a build with a digest of its own that behaves the same.
///
/// # Panics
///
/// When the section's content reaches 128 bytes, because its sizes are
/// written as one-byte LEB128 numbers.
pub fn with_custom_section(component: &[u8], name: &str, payload: &str) -> Vec<u8> {
    let content_length = 1 + name.len() + payload.len();
    assert!(content_length < 128, "one-byte LEB128 lengths only");
    // A custom section: id 0, its size, the name's size, the name, the payload.
    let mut build = component.to_vec();
    build.push(0);
    build.push(content_length as u8);
    build.push(name.len() as u8);
    build.extend_from_slice(name.as_bytes());
    build.extend_from_slice(payload.as_bytes());
    build
}

/// Writes `bytes` to `dir/name` through a dot-named temporary file and a
/// rename, as `scripts/build-flows` does, so a watcher never reads half a file.
pub fn drop_build(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let temporary = dir.join(format!(".{name}.tmp"));
    std::fs::write(&temporary, bytes)
        .with_context(|| format!("failed to write {}", temporary.display()))?;
    std::fs::rename(&temporary, dir.join(name))
        .with_context(|| format!("failed to rename {} to {name}", temporary.display()))?;
    Ok(())
}

/// Returns the sha256 of `bytes` in lowercase hex, as pins spell digests
/// after `sha256:`.
pub fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_replaces_every_occurrence() {
        let patched = patch_bytes(b"v1.0 and v1.0", "v1.0", "v2.0").unwrap();
        assert_eq!(patched, b"v2.0 and v2.0");
    }

    #[test]
    fn patch_rejects_missing_or_other_length() {
        assert!(patch_bytes(b"v1.0", "v3.0", "v4.0").is_err());
        assert!(patch_bytes(b"v1.0", "v1.0", "v10.0").is_err());
    }

    #[test]
    fn custom_section_is_appended_whole() {
        let build = with_custom_section(b"\0asm", "x", "42");
        assert_eq!(build, b"\0asm\x00\x04\x01x42");
    }
}
