//! Policies as a registry: the [`Policy`] trait the engine runs, each policy's [`Definition`]
//! (name, default mode, how it is built from its settings), and [`POLICIES`], the one list of
//! them in evaluation order. Adding a policy is one module and one line here.

use std::any::Any;
use std::fmt;

use serde::de::DeserializeOwned;

use super::{Mode, Scope, Subject, Violation};
use super::{availability, image, metadata, probes, resources, security};

/// Every policy, in evaluation order.
pub const POLICIES: &[Definition] = &[
    image::TAG,
    image::REGISTRIES,
    resources::DEFINITION,
    probes::DEFINITION,
    security::POD_SECURITY,
    security::READ_ONLY_ROOT_FILESYSTEM,
    metadata::REQUIRED_LABELS,
    metadata::PRIORITY_CLASS,
    availability::DEFINITION,
];

/// Every policy's name, in evaluation order.
pub fn names() -> impl Iterator<Item = &'static str> + Clone {
    POLICIES.iter().map(|d| d.name)
}

/// A policy as the engine runs it.
pub trait Policy: fmt::Debug + Send + Sync {
    /// Its mode and the namespaces it skips.
    fn scope(&self) -> &Scope;
    /// Adds a violation for every rule the subject breaks.
    fn evaluate(&self, subject: &Subject<'_>, out: &mut Vec<Violation>);
    /// The concrete policy, for the few places that need its settings.
    fn as_any(&self) -> &dyn Any;
}

/// Implements [`Policy`] for a policy struct with a `scope` field and an inherent `evaluate`.
macro_rules! impl_policy {
    ($t:ty) => {
        impl $crate::policy::registry::Policy for $t {
            fn scope(&self) -> &$crate::policy::Scope {
                &self.scope
            }
            fn evaluate(
                &self,
                subject: &$crate::policy::Subject<'_>,
                out: &mut Vec<$crate::policy::Violation>,
            ) {
                <$t>::evaluate(self, subject, out)
            }
            fn as_any(&self) -> &dyn std::any::Any {
                self
            }
        }
    };
}
pub(crate) use impl_policy;

/// The policy file's settings of one policy besides `mode` and `excludeNamespaces`.
pub type Settings = serde_norway::Mapping;

/// A policy's registry entry.
pub struct Definition {
    /// Its name in the policy file, in violations and in metrics (`image-tag`).
    pub name: &'static str,
    /// Its mode when the policy file does not set one.
    pub default_mode: Mode,
    /// Builds it from its scope and settings.
    pub build: fn(Scope, Settings) -> Result<Box<dyn Policy>, SettingError>,
}

/// A setting that cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub struct SettingError {
    /// The setting's path under the policy (`require`, `require[1]`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl SettingError {
    /// An error about `field`.
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// `settings` as the policy's settings type (whose serde attributes reject unknown fields),
/// naming the offending field.
pub fn parse<T: DeserializeOwned>(settings: Settings) -> Result<T, SettingError> {
    serde_path_to_error::deserialize(serde_norway::Value::Mapping(settings)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde reports an unknown key at the map holding it, so the key is named from the
        // message (`unknown field `x`, expected …`), the one place it appears.
        let unknown = inner
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next());
        match unknown {
            Some(key) => SettingError::new(&join(&path, key), "not a setting of this policy"),
            None => SettingError::new(&path, inner),
        }
    })
}

fn join(path: &str, key: &str) -> String {
    if path == "." || path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Builds a policy that has no settings of its own.
pub fn without_settings<T: Policy + 'static>(
    settings: Settings,
    policy: T,
) -> Result<Box<dyn Policy>, SettingError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoSettings {}
    parse::<NoSettings>(settings)?;
    Ok(Box::new(policy))
}
