//! Hot reload: watches the drop folder and the pin files, and reloads the
//! registry when either changes.
//!
//! Events are debounced: a reload starts once the watched folders have been
//! quiet for [`QUIET`], or [`MAX_DELAY`] after the first event, so a file
//! written in many chunks, or written and then renamed into place, is read
//! once it is whole. A file that is still half-written fails to compile, is
//! logged, and is read again on its next change. The parent of each watched
//! folder is watched too, so a folder that is deleted and created again, or
//! replaced by a rename, is watched again. A rescan every [`RESCAN`] covers
//! events the operating system dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::registry::{Registry, ReloadReport};

/// Quiet time after the last event before a reload starts. Builds and pins
/// written through a rename arrive whole; a file written in chunks that is
/// read too early fails to compile and is read again on its next change.
pub const QUIET: Duration = Duration::from_millis(25);
/// Maximum wait from the first event to the reload, however busy the folder.
pub const MAX_DELAY: Duration = Duration::from_secs(1);
/// Interval of the rescan that runs without any event.
pub const RESCAN: Duration = Duration::from_secs(5);

/// Runs until `shutdown`, reloading `registry` after changes to `folders`,
/// and calls `on_swap` after every reload that swapped the serving set.
pub async fn run(
    registry: Arc<Registry>,
    folders: Vec<PathBuf>,
    on_swap: impl Fn(ReloadReport) + Send + 'static,
    shutdown: CancellationToken,
) {
    let (events, mut received) = mpsc::unbounded_channel::<()>();
    // This sender lives as long as the loop, so the channel stays open even
    // when no watcher could be set up and only the rescans run.
    let watcher_events = events.clone();
    let handler = move |event: notify::Result<notify::Event>| match event {
        Ok(event) if event.kind.is_access() => {}
        // Sending fails only once the loop below has returned.
        Ok(_) => drop(watcher_events.send(())),
        Err(error) => warn!(%error, "file watcher reported an error"),
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            warn!(%error, "file watcher unavailable, rescanning every {} s only", RESCAN.as_secs());
            None
        }
    };
    let mut watched = Watched::default();
    if let Some(watcher) = watcher.as_mut() {
        watched.arm(watcher, &folders);
    }
    info!(folders = ?folders, "watching for new flow builds and pin changes");

    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = received.recv() => debounce(&mut received).await,
            _ = tokio::time::sleep(RESCAN) => {}
        }
        if let Some(watcher) = watcher.as_mut() {
            watched.arm(watcher, &folders);
        }
        let report = registry.reload().await;
        if report.swapped {
            on_swap(report);
        }
    }
    drop(events);
}

/// Waits until no event arrived for [`QUIET`], or [`MAX_DELAY`] passed.
async fn debounce(received: &mut mpsc::UnboundedReceiver<()>) {
    let deadline = tokio::time::Instant::now() + MAX_DELAY;
    loop {
        let quiet_until = (tokio::time::Instant::now() + QUIET).min(deadline);
        match tokio::time::timeout_at(quiet_until, received.recv()).await {
            Ok(Some(())) if tokio::time::Instant::now() < deadline => continue,
            _ => return,
        }
    }
}

/// The folders being watched, each with the identity it had when its watch
/// was set, so a folder replaced on disk is noticed and watched again.
#[derive(Default)]
struct Watched {
    folders: Vec<(PathBuf, Option<FolderId>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FolderId {
    device: u64,
    inode: u64,
}

impl Watched {
    /// Sets a watch on every folder and its parent, again for any folder
    /// whose identity changed since its watch was set.
    fn arm(&mut self, watcher: &mut RecommendedWatcher, folders: &[PathBuf]) {
        for folder in folders {
            let id = folder_id(folder);
            let known = self
                .folders
                .iter()
                .find(|(path, _)| path == folder)
                .map(|(_, id)| *id);
            if known == Some(id) && id.is_some() {
                continue;
            }
            let _ = watcher.unwatch(folder);
            if id.is_some() {
                match watcher.watch(folder, RecursiveMode::NonRecursive) {
                    Ok(()) => debug!(folder = %folder.display(), "watch set"),
                    Err(error) => {
                        warn!(folder = %folder.display(), %error, "failed to watch folder")
                    }
                }
            }
            // `flows` has the parent "", which is the current folder.
            let parent = folder.parent().map(|parent| {
                if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                }
            });
            if known.is_none()
                && let Some(parent) = parent.filter(|parent| parent.is_dir())
            {
                // Events in the parent tell when the folder itself is
                // created, removed or renamed.
                if let Err(error) = watcher.watch(parent, RecursiveMode::NonRecursive) {
                    warn!(folder = %parent.display(), %error, "failed to watch parent folder");
                }
            }
            self.folders.retain(|(path, _)| path != folder);
            self.folders.push((folder.clone(), id));
        }
    }
}

#[cfg(unix)]
fn folder_id(path: &Path) -> Option<FolderId> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path)
        .ok()
        .filter(|metadata| metadata.is_dir())?;
    Some(FolderId {
        device: metadata.dev(),
        inode: metadata.ino(),
    })
}

#[cfg(not(unix))]
fn folder_id(path: &Path) -> Option<FolderId> {
    path.is_dir().then_some(FolderId {
        device: 0,
        inode: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn debounce_waits_for_quiet() {
        let (events, mut received) = mpsc::unbounded_channel();
        let sender = tokio::spawn(async move {
            for _ in 0..5 {
                events.send(()).unwrap();
                tokio::time::sleep(QUIET / 2).await;
            }
            events
        });
        let started = tokio::time::Instant::now();
        debounce(&mut received).await;
        let waited = started.elapsed();
        // Five events half the quiet time apart, then one quiet period.
        assert!(waited >= QUIET / 2 * 4 + QUIET, "{waited:?}");
        assert!(waited < MAX_DELAY, "{waited:?}");
        drop(sender.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn debounce_gives_up_at_max_delay() {
        let (events, mut received) = mpsc::unbounded_channel();
        let sender = tokio::spawn(async move {
            loop {
                if events.send(()).is_err() {
                    return;
                }
                tokio::time::sleep(QUIET / 4).await;
            }
        });
        let started = tokio::time::Instant::now();
        debounce(&mut received).await;
        let waited = started.elapsed();
        assert!(waited >= MAX_DELAY, "{waited:?}");
        assert!(waited < MAX_DELAY + QUIET, "{waited:?}");
        drop(received);
        sender.await.unwrap();
    }
}
