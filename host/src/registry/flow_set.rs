//! The flows a host serves at one moment: for each flow its pinned build,
//! an optional canary build, and the command table built from the manifests.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::runtime::FlowComponent;

/// Commands the host answers itself; no flow may claim them.
pub const HOST_COMMANDS: &[(&str, &str)] = &[
    ("help", "List what this bot can do"),
    ("cancel", "Stop what you are doing"),
    ("start", "Start talking to the bot"),
];

/// Replaced as a whole, never mutated, so an update in flight keeps the set
/// it started with.
#[derive(Default)]
pub struct FlowSet {
    flows: BTreeMap<String, Selection>,
    /// Command name to the flow that owns it.
    commands: BTreeMap<String, String>,
    /// Commands that a flow declared but does not get.
    ignored: Vec<IgnoredCommand>,
}

/// A command a flow declared that the set does not route to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredCommand {
    pub flow: String,
    pub command: String,
    pub reason: &'static str,
}

/// The builds of one flow that serve new conversations.
#[derive(Clone)]
pub struct Selection {
    pub stable: Arc<FlowComponent>,
    pub canary: Option<Canary>,
}

/// A candidate build and the share of users it serves.
#[derive(Clone)]
pub struct Canary {
    pub component: Arc<FlowComponent>,
    /// 1 to 99: users whose bucket is below this go to the candidate.
    pub percent: u8,
}

impl FlowSet {
    /// Adds `flow` as the pinned build of its name and claims its commands.
    /// A command that is already taken stays with its first owner, and one
    /// reserved for the host is not claimed; both are listed in
    /// [`FlowSet::ignored_commands`].
    pub fn insert(&mut self, flow: Arc<FlowComponent>) -> anyhow::Result<()> {
        let name = flow.manifest.name.clone();
        anyhow::ensure!(
            !self.flows.contains_key(&name),
            "a flow named {name} is already loaded"
        );
        for command in &flow.manifest.commands {
            let reserved = HOST_COMMANDS
                .iter()
                .any(|(host_command, _)| *host_command == command.name);
            let reason = if reserved {
                "reserved for the host"
            } else if self.commands.contains_key(&command.name) {
                "already taken by another flow"
            } else {
                self.commands.insert(command.name.clone(), name.clone());
                continue;
            };
            self.ignored.push(IgnoredCommand {
                flow: name.clone(),
                command: command.name.clone(),
                reason,
            });
        }
        self.flows.insert(
            name,
            Selection {
                stable: flow,
                canary: None,
            },
        );
        Ok(())
    }

    /// Adds a selection taken from another set, commands included.
    pub fn insert_selection(&mut self, selection: Selection) {
        let canary = selection.canary.clone();
        if self.insert(selection.stable).is_ok()
            && let Some(canary) = canary
        {
            let _ = self.set_canary(canary.component, canary.percent);
        }
    }

    /// Sends `percent` of users of the flow of the same name to `component`.
    pub fn set_canary(&mut self, component: Arc<FlowComponent>, percent: u8) -> anyhow::Result<()> {
        let name = &component.manifest.name;
        let Some(selection) = self.flows.get_mut(name) else {
            anyhow::bail!("canary of {name} needs a pinned build of {name} beside it");
        };
        selection.canary = Some(Canary { component, percent });
        Ok(())
    }

    /// Returns the pinned build of flow `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<FlowComponent>> {
        self.flows.get(name).map(|selection| &selection.stable)
    }

    pub fn selection(&self, name: &str) -> Option<&Selection> {
        self.flows.get(name)
    }

    /// Returns the build of flow `name` that serves `user_id`: the canary
    /// for the users in its share, the pinned build for everyone else. The
    /// share is stable per user, so a user stays on one side.
    pub fn assigned(&self, name: &str, user_id: i64) -> Option<&Arc<FlowComponent>> {
        let selection = self.flows.get(name)?;
        match &selection.canary {
            Some(canary) if canary_bucket(name, user_id) < canary.percent => {
                Some(&canary.component)
            }
            _ => Some(&selection.stable),
        }
    }

    pub fn ignored_commands(&self) -> &[IgnoredCommand] {
        &self.ignored
    }

    pub fn flow_for_command(&self, command: &str) -> Option<&str> {
        self.commands.get(command).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    pub fn selections(&self) -> impl Iterator<Item = (&String, &Selection)> {
        self.flows.iter()
    }

    /// Every command with its description: the flows' commands in name order,
    /// then the host's own.
    pub fn command_list(&self) -> Vec<(String, String)> {
        let mut list: Vec<(String, String)> = Vec::new();
        for (command, owner) in &self.commands {
            let description = self.flows[owner]
                .stable
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

/// Places a user in one of 100 buckets per flow with FNV-1a over the flow
/// name and the user id, so the split is the same on every host and restart.
pub fn canary_bucket(flow: &str, user_id: i64) -> u8 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in flow.bytes().chain(user_id.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % 100) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_bucket_is_stable_and_spread() {
        assert_eq!(
            canary_bucket("workouts", 1001),
            canary_bucket("workouts", 1001)
        );
        let in_ten_percent = (0..10_000)
            .filter(|user| canary_bucket("workouts", *user) < 10)
            .count();
        // 10% of 10,000 users, give or take what a fair hash scatters.
        assert!((800..1200).contains(&in_ten_percent), "{in_ten_percent}");
    }

    #[test]
    fn canary_bucket_differs_between_flows() {
        let differing = (0..1000)
            .filter(|user| canary_bucket("workouts", *user) != canary_bucket("exercises", *user))
            .count();
        assert!(differing > 900, "{differing}");
    }
}
