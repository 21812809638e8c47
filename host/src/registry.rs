//! Registry of loaded flows and the command table built from their manifests.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tracing::{info, warn};

use crate::runtime::{FlowComponent, Runtime};

/// Commands the host answers itself; no flow may claim them.
pub const HOST_COMMANDS: &[(&str, &str)] = &[
    ("help", "List what this bot can do"),
    ("cancel", "Stop what you are doing"),
    ("start", "Start talking to the bot"),
];

/// The flows a host serves at one moment. Replaced as a whole, never mutated,
/// so an update in flight keeps the set it started with.
#[derive(Default)]
pub struct FlowSet {
    flows: BTreeMap<String, Arc<FlowComponent>>,
    /// Command name to the flow that owns it.
    commands: BTreeMap<String, String>,
}

impl FlowSet {
    /// Loads every `*.wasm` file in `dir`. A file that fails to load is logged
    /// and skipped, so one broken flow does not take the others down.
    pub async fn load_dir(runtime: &Runtime, dir: &Path) -> anyhow::Result<Self> {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("failed to read flows folder {}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "wasm")
            })
            .collect();
        paths.sort();

        let mut set = Self::default();
        for path in paths {
            let started = Instant::now();
            match runtime.load(&path).await {
                Ok(flow) => {
                    info!(
                        flow = %flow.manifest.name,
                        version = %flow.manifest.version,
                        digest = %&flow.digest[..12],
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "flow loaded"
                    );
                    if let Err(error) = set.insert(flow) {
                        warn!(path = %path.display(), %error, "flow skipped");
                    }
                }
                Err(error) => {
                    warn!(path = %path.display(), error = format!("{error:#}"), "flow failed to load")
                }
            }
        }
        Ok(set)
    }

    /// Adds `flow` and claims its commands. A command that is already taken
    /// stays with its first owner and is logged.
    pub fn insert(&mut self, flow: FlowComponent) -> anyhow::Result<()> {
        let name = flow.manifest.name.clone();
        anyhow::ensure!(
            !self.flows.contains_key(&name),
            "a flow named {name} is already loaded"
        );
        for command in &flow.manifest.commands {
            let reserved = HOST_COMMANDS
                .iter()
                .any(|(host_command, _)| *host_command == command.name);
            if reserved {
                warn!(flow = %name, command = %command.name, "command is reserved for the host, ignored");
            } else if let Some(owner) = self.commands.get(&command.name) {
                warn!(flow = %name, command = %command.name, %owner, "command already taken, ignored");
            } else {
                self.commands.insert(command.name.clone(), name.clone());
            }
        }
        self.flows.insert(name, Arc::new(flow));
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Arc<FlowComponent>> {
        self.flows.get(name)
    }

    pub fn flow_for_command(&self, command: &str) -> Option<&str> {
        self.commands.get(command).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    pub fn flows(&self) -> impl Iterator<Item = &Arc<FlowComponent>> {
        self.flows.values()
    }

    /// Every command with its description: the flows' commands in name order,
    /// then the host's own.
    pub fn command_list(&self) -> Vec<(String, String)> {
        let mut list: Vec<(String, String)> = Vec::new();
        for (command, owner) in &self.commands {
            let description = self.flows[owner]
                .manifest
                .commands
                .iter()
                .find(|info| &info.name == command)
                .map(|info| info.description.clone())
                .unwrap_or_default();
            list.push((command.clone(), description));
        }
        for (command, description) in HOST_COMMANDS
            .iter()
            .filter(|(command, _)| *command != "start")
        {
            list.push(((*command).to_owned(), (*description).to_owned()));
        }
        list
    }
}
