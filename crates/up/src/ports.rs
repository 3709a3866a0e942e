//! `up`'s one port table: each role's offset from `--base-port`, its URL, and the banner
//! printed once every role is ready (README.md shows it; tests/readme.rs compares the two).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// One role's listener in `up`, as the banner shows it.
pub struct Row {
    /// The role, as the banner names it.
    pub role: &'static str,
    /// Its port is `--base-port` plus this.
    pub offset: u16,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// Where the banner's URL points.
    pub path: &'static str,
    /// What the banner says it serves; `{interval}` is [`PROBE_INTERVAL`].
    pub what: &'static str,
}

const fn row(role: &'static str, offset: u16, scheme: &'static str, path: &'static str) -> Row {
    Row {
        role,
        offset,
        scheme,
        path,
        what: "",
    }
}

/// backend-api's listener.
pub const BACKEND_API: Row = Row {
    what: "GET /  /download_external_logs?env=development  /api",
    ..row("backend-api", 0, "http", "/")
};
/// data-api's listener.
pub const DATA_API: Row = Row {
    what: "GET /  /api",
    ..row("data-api", 1, "http", "/")
};
/// healthcheck serve's status page and API.
pub const HEALTHCHECK: Row = Row {
    what: "status page  /api/status  (probes the two APIs every {interval})",
    ..row("healthcheck", 2, "http", "/")
};
/// The webhook's TLS listener.
pub const WEBHOOK: Row = Row {
    what: "POST /validate  /mutate (CA: webhook-ca.pem in the data dir)",
    ..row("webhook (TLS)", 3, "https", "/")
};
/// logship's admin port.
pub const LOGSHIP: Row = Row {
    what: "ships logs/ to the archive/ in the data dir",
    ..row("logship", 4, "http", "/metrics")
};
/// The webhook's plain-HTTP probes and metrics.
pub const WEBHOOK_METRICS: Row = Row {
    what: "the webhook's /healthz /readyz /metrics over plain HTTP",
    ..row("webhook metrics", 5, "http", "/metrics")
};
/// The sample external-logs API backend-api calls.
pub const SAMPLE: Row = Row {
    what: "the API backend-api calls; keys generated in the data dir",
    ..row("sample external logs", 6, "http", "/logs")
};

/// Every row, in the banner's order.
pub const PORTS: [Row; 7] = [
    BACKEND_API,
    DATA_API,
    HEALTHCHECK,
    WEBHOOK,
    WEBHOOK_METRICS,
    LOGSHIP,
    SAMPLE,
];

/// How often `up`'s health checker probes the two APIs; the banner says so.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(30);

/// `--base-port` leaves no room for every role's port.
#[derive(Debug, thiserror::Error)]
#[error("--base-port {base}: N+{top} exceeds 65535")]
pub struct PortError {
    base: u16,
    top: u16,
}

/// Where the roles listen: one host, ports from a base.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    host: IpAddr,
    base: u16,
}

impl Ports {
    /// The ports from `base`; an error when the highest would pass 65535.
    pub fn new(host: IpAddr, base: u16) -> Result<Self, PortError> {
        let top = PORTS.iter().map(|r| r.offset).max().unwrap_or_default();
        match base.checked_add(top) {
            Some(_) => Ok(Self { host, base }),
            None => Err(PortError { base, top }),
        }
    }

    /// The row's port (`new` checked that it exists).
    pub fn port(self, row: &Row) -> u16 {
        self.base.saturating_add(row.offset)
    }

    /// `scheme://host:port`, without the path.
    pub fn origin(self, row: &Row) -> String {
        let addr = SocketAddr::new(self.host, self.port(row));
        format!("{}://{addr}", row.scheme)
    }

    /// The row's URL, path included.
    pub fn url(self, row: &Row) -> String {
        self.origin(row) + row.path
    }

    /// The table printed once every role is ready.
    pub fn banner(self, interval: Duration, root: &Path) -> String {
        let mut t = String::from("\nferrostack up — all roles on localhost (Ctrl-C to stop)\n\n");
        let interval = runtime::format_duration(interval);
        for row in &PORTS {
            let (role, url) = (row.role, self.url(row));
            let what = row.what.replace("{interval}", &interval);
            t.push_str(&format!("  {role:<22} {url:<32} {what}\n"));
        }
        t.push_str(&format!(
            "\n  every role also serves /healthz /readyz /version /metrics /openapi.json\n  state: {}\n",
            root.display()
        ));
        t
    }
}
