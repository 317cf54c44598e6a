//! Reloading a folder over a working catalog: new and changed components
//! come in, removed ones go. Trust fails closed: a component whose policy,
//! secrets or grants can no longer be resolved stops serving (withdrawn).
//! A component whose new version only fails to load keeps serving its
//! previous code, under the policy of now (reported as such, never
//! silently).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::policy_file::resolve_policy;
use super::{Catalog, CatalogError, LoadError, LoadOptions, LoadedComponent};

/// Where one component stands in a catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ComponentState {
    /// Its current file loaded and its tools are published.
    Loaded,
    /// Its file was refused and it has no tools.
    Failed,
    /// Its new file was refused; the previous version's tools are still
    /// published, under the current policy.
    KeptPrevious,
    /// It served before the last reload and no longer does: its policy,
    /// secrets or grants could not be resolved, so neither the old grants
    /// nor the new ones apply.
    Withdrawn,
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

impl ComponentStatus {
    /// The status as a tenant may see it: the error's detail (host paths,
    /// variable names, parser messages) is for the operator's log and the
    /// admin; a tenant gets a reason that names none of them.
    #[must_use]
    pub fn without_detail(mut self) -> Self {
        self.error = self.error.as_ref().map(|_| {
            match self.state {
                ComponentState::Loaded => "some of its tools were refused",
                ComponentState::Failed => "it could not be loaded",
                ComponentState::KeptPrevious => {
                    "its new version could not be loaded; the previous one keeps serving"
                }
                ComponentState::Withdrawn => "withdrawn: its policy can no longer be resolved",
            }
            .to_string()
        });
        self
    }
}

impl Catalog {
    /// Loads `dir` again and returns the new catalog; `self` is unchanged, so
    /// calls running on it finish on the versions they started with.
    ///
    /// A component whose policy (or a secret or directory it names) no
    /// longer resolves is withdrawn: its previous version stops serving too
    /// ([`ComponentState::Withdrawn`]). A component whose file is still there
    /// but now fails to load or validate keeps its previous version's code,
    /// under the current policy's grants and limits (its state is
    /// [`ComponentState::KeptPrevious`]). Either way the error is in
    /// [`Catalog::failures`]. A component whose file is gone is dropped.
    pub async fn reload(&self, dir: &Path, options: &LoadOptions) -> Result<Self, CatalogError> {
        let mut fresh = Self::load_dir(&self.engine, dir, options).await?;
        // Each refused component, with the file it was refused for and
        // whether its trust (policy, secrets, grants) failed.
        let mut failed: BTreeMap<String, (std::path::PathBuf, bool)> = BTreeMap::new();
        for error in &fresh.failures {
            // A refused tool does not refuse its component, which loaded.
            if matches!(error, LoadError::Tool { .. }) || !error.path().exists() {
                continue;
            }
            let Some(component) = error.path().file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let trust = matches!(error, LoadError::Policy(_));
            let wasm = error.path().with_extension("wasm");
            let entry = failed.entry(component.to_string()).or_insert((wasm, false));
            entry.1 |= trust;
        }
        for (component, (wasm, trust)) in failed {
            let previous: Vec<_> = self
                .tools
                .iter()
                .filter(|(_, entry)| entry.component.name == component)
                .collect();
            if previous
                .iter()
                .any(|(name, _)| fresh.tools.contains_key(*name))
            {
                continue;
            }
            let Some((_, first)) = previous.first() else {
                if self.withdrawn.contains(&component) {
                    fresh.withdrawn.push(component);
                }
                continue;
            };
            if trust {
                tracing::warn!(%component, "its policy no longer resolves; withdrawn, the previous version stops serving");
                fresh.withdrawn.push(component);
                continue;
            }
            let (grants, limits) = match resolve_policy(&self.engine, &wasm, options) {
                Ok(resolved) => resolved,
                Err(error) => {
                    tracing::warn!(%component, %error, "its policy no longer resolves; withdrawn");
                    fresh.failures.push(error);
                    fresh.withdrawn.push(component);
                    continue;
                }
            };
            let serving = Arc::new(LoadedComponent {
                name: component.clone(),
                hash: first.component.hash.clone(),
                pre: first.component.pre.clone(),
                grants,
                limits,
            });
            for (name, entry) in previous {
                fresh
                    .tools
                    .insert(name.clone(), Arc::new(entry.under(serving.clone())));
            }
            tracing::warn!(%component, "the new version was refused; the previous version keeps serving under the current policy");
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
            } else if self.withdrawn.iter().any(|w| w == component) {
                status.state = ComponentState::Withdrawn;
            }
            status.error = Some(match status.error.take() {
                Some(earlier) => format!("{earlier}; {error}"),
                None => error.to_string(),
            });
        }
        by_component.into_values().collect()
    }
}
