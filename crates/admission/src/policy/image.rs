//! Image policies: a pinned tag that is not `latest` (digests pass), and allowed registries.

use serde::Deserialize;

use super::registry::{
    Definition, Policy, SettingError, Settings, impl_policy, parse, without_settings,
};
use super::{ALL_GROUPS, Mode, Report, Scope, Subject, Violation, containers};

/// `image-tag`'s registry entry.
pub const TAG: Definition = Definition {
    name: "image-tag",
    default_mode: Mode::Enforce,
    build: build_tag,
};

/// `allowed-registries`' registry entry.
pub const REGISTRIES: Definition = Definition {
    name: "allowed-registries",
    default_mode: Mode::Off,
    build: build_registries,
};

fn build_tag(scope: Scope, settings: Settings) -> Result<Box<dyn Policy>, SettingError> {
    without_settings(settings, ImageTag { scope })
}

/// `allowed-registries` settings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrySettings {
    #[serde(default)]
    registries: Vec<String>,
}

fn build_registries(scope: Scope, settings: Settings) -> Result<Box<dyn Policy>, SettingError> {
    let RegistrySettings { registries } = parse(settings)?;
    if scope.mode != Mode::Off && registries.iter().all(|r| r.trim().is_empty()) {
        let message = "list at least one registry when the policy is on";
        return Err(SettingError::new("registries", message));
    }
    Ok(Box::new(AllowedRegistries { scope, registries }))
}

impl_policy!(ImageTag);
impl_policy!(AllowedRegistries);

/// `image-tag`: every image names a tag other than `latest`, or a digest.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageTag {
    /// Mode and exclusions.
    pub scope: Scope,
}

/// `allowed-registries`: every image comes from one of the listed registries or prefixes.
#[derive(Clone, Debug, PartialEq)]
pub struct AllowedRegistries {
    /// Mode and exclusions.
    pub scope: Scope,
    /// Registry hosts (`ghcr.io`) or repository prefixes (`ghcr.io/ferrostack/`).
    pub registries: Vec<String>,
}

/// The parts of an image reference that the policies need.
#[derive(Debug, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// Registry host, `docker.io` when none is given.
    pub registry: &'a str,
    /// Repository path without the registry (`library/nginx` is not added).
    pub repository: &'a str,
    /// The tag, when one is given.
    pub tag: Option<&'a str>,
    /// The digest (`sha256:…`), when one is given.
    pub digest: Option<&'a str>,
}

/// Splits an image reference the way container runtimes do: the first path segment is a
/// registry when it contains `.` or `:` or is `localhost`.
pub fn parse_image(image: &str) -> ImageRef<'_> {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let (registry, rest) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest)
        }
        _ => ("docker.io", name),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (repository, tag) = match rest[last_slash..].find(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    ImageRef {
        registry,
        repository,
        tag,
        digest,
    }
}

impl ImageTag {
    /// Adds a violation for each container image without a usable tag.
    pub fn evaluate(&self, subject: &Subject<'_>, out: &mut Vec<Violation>) {
        let mut report = Report::new(TAG.name, self.scope.mode, subject, out);
        for c in containers(subject.workload.pod_spec(), ALL_GROUPS) {
            let Some(image) = c.value["image"].as_str().filter(|i| !i.is_empty()) else {
                report.container(&c, "image", "no image is set");
                continue;
            };
            let r = parse_image(image);
            if r.digest.is_some() {
                continue;
            }
            match r.tag {
                None => report.container(
                    &c,
                    "image",
                    format!("image {image:?} has no tag (it would pull latest): pin a version or a digest"),
                ),
                Some("latest") => report.container(
                    &c,
                    "image",
                    format!("image {image:?} uses the tag latest: pin a version or a digest"),
                ),
                Some(_) => {}
            }
        }
    }
}

impl AllowedRegistries {
    /// Adds a violation for each container image from a registry not on the list.
    pub fn evaluate(&self, subject: &Subject<'_>, out: &mut Vec<Violation>) {
        let mut report = Report::new(REGISTRIES.name, self.scope.mode, subject, out);
        for c in containers(subject.workload.pod_spec(), ALL_GROUPS) {
            let Some(image) = c.value["image"].as_str() else {
                continue;
            };
            if !self.allows(image) {
                report.container(
                    &c,
                    "image",
                    format!(
                        "image {image:?} is not from an allowed registry ({})",
                        self.registries.join(", ")
                    ),
                );
            }
        }
    }

    /// Whether `image` starts with one of the entries at a path boundary, so that
    /// `ghcr.io` does not allow `ghcr.io.evil.example/x`.
    pub fn allows(&self, image: &str) -> bool {
        let r = parse_image(image);
        let full = if r.registry == "docker.io" && !r.repository.contains('/') {
            format!("docker.io/library/{}", r.repository)
        } else {
            format!("{}/{}", r.registry, r.repository)
        };
        self.registries.iter().any(|entry| {
            if entry.ends_with('/') {
                full.starts_with(entry.as_str())
            } else {
                full == *entry
                    || full
                        .strip_prefix(entry.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_util::{deployment, enforce, fields, subject};
    use serde_json::json;

    fn tag_violations(images: &[&str]) -> Vec<Violation> {
        let containers: Vec<_> = images
            .iter()
            .enumerate()
            .map(|(i, im)| json!({"name": format!("c{i}"), "image": im}))
            .collect();
        let object = deployment(json!({ "containers": containers }));
        let mut out = Vec::new();
        ImageTag { scope: enforce() }.evaluate(&subject(&object), &mut out);
        out
    }

    #[test]
    fn parses_registries_ports_tags_and_digests() {
        let r = parse_image("registry:5000/team/app");
        assert_eq!(
            (r.registry, r.repository, r.tag),
            ("registry:5000", "team/app", None)
        );
        let r = parse_image("nginx:1.27");
        assert_eq!(
            (r.registry, r.repository, r.tag),
            ("docker.io", "nginx", Some("1.27"))
        );
        let r = parse_image("ghcr.io/a/b:v1@sha256:abc");
        assert_eq!(
            (r.repository, r.tag, r.digest),
            ("a/b", Some("v1"), Some("sha256:abc"))
        );
        let r = parse_image("localhost/app:dev");
        assert_eq!(
            (r.registry, r.repository, r.tag),
            ("localhost", "app", Some("dev"))
        );
    }

    #[test]
    fn pinned_tags_and_digests_pass() {
        assert!(
            tag_violations(&["nginx:1.27", "ghcr.io/x/y@sha256:0123", "r:5000/a:b"]).is_empty()
        );
    }

    #[test]
    fn latest_and_missing_tags_are_violations_with_the_container_path() {
        let v = tag_violations(&["nginx:1", "nginx:latest", "registry:5000/app", ""]);
        assert_eq!(
            fields(&v),
            [
                "spec.template.spec.containers[1].image",
                "spec.template.spec.containers[2].image",
                "spec.template.spec.containers[3].image"
            ]
        );
        assert_eq!(v[0].container.as_deref(), Some("c1"));
        assert!(v[0].message.contains("latest"), "{}", v[0].message);
    }

    #[test]
    fn registries_match_at_path_boundaries() {
        let p = AllowedRegistries {
            scope: enforce(),
            registries: vec!["ghcr.io".into(), "docker.io/library/".into()],
        };
        assert!(p.allows("ghcr.io/ferrostack/app:1"));
        assert!(p.allows("nginx:1.27"), "docker.io/library/nginx");
        assert!(!p.allows("ghcr.io.evil.example/app:1"));
        assert!(!p.allows("quay.io/app:1"));
        assert!(!p.allows("someone/nginx:1"));
    }
}
