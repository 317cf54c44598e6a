//! Reloading a folder over a working catalog: new and changed components
//! come in, removed ones go, and a component whose new version fails keeps
//! serving its previous version (reported as such, never silently).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use super::{Catalog, CatalogError, LoadOptions};

/// Where one component stands in a catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ComponentState {
    /// Its current file loaded and its tools are published.
    Loaded,
    /// Its file was refused and it has no tools.
    Failed,
    /// Its new file was refused; the previous version's tools are still published.
    KeptPrevious,
}

/// One component's state, for `/v1/tools` and logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ComponentStatus {
    /// The component (file stem).
    pub component: String,
    /// Loaded, failed, or kept at its previous version.
    pub state: ComponentState,
    /// The content hash of the version serving calls, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// The public names of its published tools.
    pub tools: Vec<String>,
    /// Why its file was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Catalog {
    /// Loads `dir` again and returns the new catalog; `self` is unchanged, so
    /// calls running on it finish on the versions they started with.
    ///
    /// A component whose file is still there but now fails to load or
    /// validate keeps its previous version's tools (its state is
    /// [`ComponentState::KeptPrevious`] and the error is in
    /// [`Catalog::failures`]). A component whose file is gone is dropped.
    pub async fn reload(&self, dir: &Path, options: &LoadOptions) -> Result<Self, CatalogError> {
        let mut fresh = Self::load_dir(&self.engine, dir, options).await?;
        let failed: BTreeSet<String> = fresh
            .failures
            .iter()
            // A refused tool does not refuse its component, which loaded.
            .filter(|error| !matches!(error, super::LoadError::Tool { .. }))
            .filter(|error| error.path().exists())
            .filter_map(|error| error.path().file_stem()?.to_str().map(str::to_string))
            .collect();
        for component in failed {
            let previous: Vec<_> = self
                .tools
                .iter()
                .filter(|(_, entry)| entry.component.name == component)
                .collect();
            if previous.is_empty()
                || previous
                    .iter()
                    .any(|(name, _)| fresh.tools.contains_key(*name))
            {
                continue;
            }
            for (name, entry) in previous {
                fresh.tools.insert(name.clone(), entry.clone());
            }
            tracing::warn!(%component, "the new version was refused; the previous version keeps serving");
            fresh.kept.push(component);
        }
        Ok(fresh)
    }

    /// Every component's state: loaded, failed, or kept at its previous
    /// version, sorted by name.
    pub fn status(&self) -> Vec<ComponentStatus> {
        let mut by_component: BTreeMap<&str, ComponentStatus> = BTreeMap::new();
        for entry in self.tools.values() {
            let status = by_component
                .entry(&entry.component.name)
                .or_insert_with(|| ComponentStatus {
                    component: entry.component.name.clone(),
                    state: ComponentState::Loaded,
                    hash: Some(entry.component.hash.clone()),
                    tools: Vec::new(),
                    error: None,
                });
            status.tools.push(entry.info.name.clone());
        }
        for error in &self.failures {
            let Some(component) = error.path().file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let kept = self.kept.iter().any(|k| k == component);
            let status = by_component
                .entry(component)
                .or_insert_with(|| ComponentStatus {
                    component: component.to_string(),
                    state: ComponentState::Failed,
                    hash: None,
                    tools: Vec::new(),
                    error: None,
                });
            if kept {
                status.state = ComponentState::KeptPrevious;
            }
            status.error = Some(match status.error.take() {
                Some(earlier) => format!("{earlier}; {error}"),
                None => error.to_string(),
            });
        }
        by_component.into_values().collect()
    }
}
