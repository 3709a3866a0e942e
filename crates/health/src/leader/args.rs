//! The leader-election flags of `healthcheck serve` and their validation.

use std::path::PathBuf;
use std::time::Duration;

use kubeapi::ApiAccess;

use crate::config::ConfigError;

/// The shortest `--lease-duration`: the renew period (a 7.5th of it) stays at least 400 ms.
const MIN_LEASE: Duration = Duration::from_secs(3);

/// Leader election among replicas (see README "Replicas and leader election").
#[derive(clap::Args, Clone, Debug)]
pub struct LeaseArgs {
    /// Kubeconfig of the API server the replicas elect their leader on; in a pod the
    /// ServiceAccount is used without it. Neither: no election, this process probes and alerts
    /// alone.
    #[arg(long, env = "FERROSTACK_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Name of the coordination.k8s.io/v1 Lease the replicas elect their leader with.
    #[arg(
        long,
        env = "FERROSTACK_LEASE_NAME",
        default_value = "ferrostack-healthcheck"
    )]
    pub lease_name: String,
    /// Namespace of the Lease [default: the ServiceAccount's, or the kubeconfig context's].
    #[arg(long, env = "FERROSTACK_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// How long a silent leader is waited for before another replica takes over (whole
    /// seconds, at least 3s); the leader renews every 2/15 of it and stops leading when it
    /// could not renew for 2/3 of it.
    #[arg(long, env = "FERROSTACK_LEASE_DURATION", default_value = "15s", value_parser = runtime::parse_duration)]
    pub lease_duration: Duration,
    /// This replica's identity in the Lease [default: the host (pod) name, the process id and
    /// its start time].
    #[arg(long, env = "FERROSTACK_LEASE_IDENTITY")]
    pub lease_identity: Option<String>,
    /// The base URL other replicas reach this one at (e.g. http://10.0.0.7:8082), kept in the
    /// Lease while it leads, so that a follower forwards a push to the leader instead of
    /// refusing it. Unset: followers answer a push with 503 not_leader.
    #[arg(long, env = "FERROSTACK_ADVERTISE_URL")]
    pub advertise_url: Option<url::Url>,
}

/// Validated election settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionConfig {
    /// Where the API server is (`None`: run alone).
    pub access: ApiAccess,
    /// The Lease's name.
    pub lease_name: String,
    /// The Lease's namespace (`None`: the client's default).
    pub namespace: Option<String>,
    /// `leaseDurationSeconds`.
    pub duration: Duration,
    /// `holderIdentity`.
    pub identity: String,
    /// Where the other replicas reach this one (kept in the Lease while it leads).
    pub advertise_url: Option<url::Url>,
}

impl ElectionConfig {
    /// Validates the flags.
    pub fn from_args(args: &LeaseArgs) -> Result<Self, ConfigError> {
        if args.lease_duration < MIN_LEASE || args.lease_duration.subsec_nanos() != 0 {
            return Err(ConfigError::flag(
                "--lease-duration",
                format!(
                    "{} is not whole seconds of at least 3s",
                    runtime::format_duration(args.lease_duration)
                ),
            ));
        }
        for (flag, value) in [
            ("--lease-name", Some(&args.lease_name)),
            ("--lease-namespace", args.lease_namespace.as_ref()),
        ] {
            if let Some(v) = value.filter(|v| !is_dns_label(v)) {
                return Err(ConfigError::flag(
                    flag,
                    format!("{v:?} is not a lowercase DNS label (a-z, 0-9, '-', at most 63)"),
                ));
            }
        }
        if args.lease_identity.as_deref() == Some("") {
            return Err(ConfigError::flag("--lease-identity", "is empty".to_owned()));
        }
        if let Some(u) = &args.advertise_url
            && (!matches!(u.scheme(), "http" | "https") || u.host().is_none())
        {
            return Err(ConfigError::flag(
                "--advertise-url",
                format!("{u} is not an http(s) URL with a host"),
            ));
        }
        Ok(Self {
            access: ApiAccess::detect(args.kubeconfig.as_deref()),
            lease_name: args.lease_name.clone(),
            namespace: args.lease_namespace.clone(),
            duration: args.lease_duration,
            identity: args.lease_identity.clone().unwrap_or_else(default_identity),
            advertise_url: args.advertise_url.clone(),
        })
    }
}

impl crate::ServeConfig {
    /// No election whatever the environment says: `up` runs every role in one process.
    #[must_use]
    pub fn alone(mut self) -> Self {
        self.election.access = ApiAccess::None;
        self
    }
}

/// The pod name (its hostname) and what tells this process from an earlier one in the same
/// pod: a restarted container must not renew its predecessor's term as if it had kept it.
fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "healthcheck".to_owned());
    let started = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!("{host}_{}_{started:x}", std::process::id())
}

fn is_dns_label(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !v.starts_with('-')
        && !v.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        lease: LeaseArgs,
    }

    fn parse(args: &[&str]) -> Result<ElectionConfig, ConfigError> {
        let cli =
            Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied())).unwrap();
        ElectionConfig::from_args(&cli.lease)
    }

    #[test]
    fn defaults_and_bad_values_name_the_flag() {
        let c = parse(&["--kubeconfig", "/k"]).unwrap();
        assert_eq!(c.lease_name, "ferrostack-healthcheck");
        assert_eq!(c.duration, Duration::from_secs(15));
        assert_eq!(c.access, ApiAccess::Kubeconfig("/k".into()));
        assert!(
            c.identity.contains(&format!("_{}_", std::process::id())),
            "{}",
            c.identity
        );
        for (args, flag) in [
            (&["--lease-duration", "2s"][..], "--lease-duration"),
            (&["--lease-duration", "3500ms"], "--lease-duration"),
            (&["--lease-name", "Not_A_Label"], "--lease-name"),
            (&["--lease-namespace=x-"], "--lease-namespace"),
            (&["--lease-identity", ""], "--lease-identity"),
        ] {
            assert_eq!(parse(args).unwrap_err().field(), Some(flag), "{args:?}");
        }
    }
}
