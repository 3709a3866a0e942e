//! Badges over a real socket: well-formed, self-contained SVG (parsed with quick-xml) with
//! the right state and uptime, the name escaped, and 404 JSON errors for unknown targets and
//! windows.

use std::time::Duration;

use ferrostack_health::history::History;
use ferrostack_health::{AlertConfig, Config, HistoryConfig};
use quick_xml::events::Event;

use crate::serve::{Running, cron_record, start, target, wait_for};
use crate::support::{TargetServer, target_server, targets};

/// The SVG's root attributes and its text nodes (unescaped), or a parse error.
fn parse_svg(svg: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut reader = quick_xml::Reader::from_str(svg);
    let (mut root, mut texts, mut text) = (None, Vec::new(), String::new());
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("{e}: {svg}")) {
            Event::Start(e) if root.is_none() => {
                assert_eq!(e.name().as_ref(), b"svg");
                root = Some(
                    e.attributes()
                        .map(|a| {
                            let a = a.unwrap();
                            let key = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
                            (
                                key,
                                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                    .unwrap()
                                    .into_owned(),
                            )
                        })
                        .collect(),
                );
            }
            Event::Text(t) => text.push_str(&t.decode().unwrap()),
            Event::GeneralRef(r) => {
                let name = r.decode().unwrap();
                text.push_str(quick_xml::escape::resolve_predefined_entity(&name).unwrap());
            }
            Event::End(_) if !text.is_empty() => texts.push(std::mem::take(&mut text)),
            Event::Eof => break,
            _ => {}
        }
    }
    (root.unwrap(), texts)
}

async fn get(url: &str) -> (u16, String, String, String) {
    let r = reqwest::get(url).await.unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (ct, cc) = (header("content-type"), header("cache-control"));
    (r.status().as_u16(), ct, cc, r.text().await.unwrap())
}

/// Serve with `ok` (a success and three failures from a CronJob, then serve's one success:
/// 40 %) and
/// `a&b <c>` (one success), both probed once (interval 1h), once both are up.
async fn serving() -> (Running, TargetServer, tempfile::TempDir) {
    let s = target_server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.jsonl");
    // Up once first: failures of a target never yet up are degraded, not downtime.
    let cron: Vec<_> = std::iter::once(cron_record("ok", true, Duration::from_secs(240)))
        .chain((1..=3).map(|i| cron_record("ok", false, Duration::from_secs(60 * i))))
        .collect();
    History::new(&path).append(&cron).unwrap();
    let yaml = format!(
        "targets:\n  - {{name: ok, url: '{0}', interval: 1h}}\n  - {{name: 'a&b <c>', url: '{0}', interval: 1h}}\n",
        s.url("/ok"),
    );
    let running = start(Config {
        targets: targets(&yaml),
        history: Some(HistoryConfig {
            path,
            max_age: None,
            max_bytes: None,
        }),
        alerts: AlertConfig::default(),
        pushgateway_url: None,
        max_concurrent_probes: 8,
    })
    .await;
    wait_for(&running.base, |v| {
        target(v, "ok")["state"] == "up" && target(v, "a&b <c>")["state"] == "up"
    })
    .await;
    (running, s, dir)
}

#[tokio::test]
async fn badges_are_well_formed_svg_with_the_state_and_uptime() {
    let (running, _server, _dir) = serving().await;
    let base = &running.base;
    let (status, ct, cc, svg) = get(&format!("{base}/badge/ok/health.svg")).await;
    assert_eq!(
        (status, ct.as_str(), cc.as_str()),
        (200, "image/svg+xml", "public, max-age=60")
    );
    let (root, texts) = parse_svg(&svg);
    assert!(root.contains(&("xmlns".into(), "http://www.w3.org/2000/svg".into())));
    assert!(root.contains(&("aria-label".into(), "ok: up".into())));
    assert_eq!(texts, ["ok: up", "ok", "up"]);
    // Self-contained: nothing to fetch, the namespace is the one URL.
    assert_eq!(svg.matches("http").count(), 1, "{svg}");
    for fetches in ["href", "@import", "<image", "<script", "<style"] {
        assert!(!svg.contains(fetches), "{fetches} in {svg}");
    }

    let (status, _, _, svg) = get(&format!("{base}/badge/ok/uptime/24h.svg")).await;
    assert_eq!(status, 200);
    let (_, texts) = parse_svg(&svg);
    assert_eq!(texts, ["ok: uptime 24h 40.00%", "uptime 24h", "40.00%"]);
    assert!(svg.contains("fill=\"#e05d44\""), "red below 95 %: {svg}");
    let (_, texts) = parse_svg(&get(&format!("{base}/badge/ok/uptime/1h.svg")).await.3);
    assert_eq!(texts[2], "40.00%");

    // The name is escaped (and percent-decoded from the path).
    let (status, _, _, svg) = get(&format!("{base}/badge/a%26b%20%3Cc%3E/uptime/7d.svg")).await;
    assert_eq!(status, 200);
    assert!(!svg.contains("<c>"), "{svg}");
    let (_, texts) = parse_svg(&svg);
    assert_eq!(
        texts,
        ["a&b <c>: uptime 7d 100.00%", "uptime 7d", "100.00%"]
    );
    let health = get(&format!("{base}/badge/a%26b%20%3Cc%3E/health.svg")).await;
    let (_, texts) = parse_svg(&health.3);
    assert_eq!(texts, ["a&b <c>: up", "a&b <c>", "up"]);
}

#[tokio::test]
async fn unknown_targets_and_windows_are_404_json_errors() {
    let (running, _server, _dir) = serving().await;
    let openapi = get(&format!("{}/openapi.json", running.base)).await.3;
    for path in [
        "\"/badge/{target}/health.svg\"",
        "\"/badge/{target}/uptime/{window}\"",
        "\"/api/push/{target}\"",
    ] {
        assert!(openapi.contains(path), "{path} in {openapi}");
    }
    for (path, code) in [
        ("/badge/nope/health.svg", "unknown_target"),
        ("/badge/nope/uptime/24h.svg", "unknown_target"),
        ("/badge/ok/uptime/2y.svg", "unknown_window"),
        ("/badge/ok/uptime/24h.png", "unknown_window"),
    ] {
        let (status, ct, _, body) = get(&format!("{}{path}", running.base)).await;
        assert_eq!((status, ct.as_str()), (404, "application/json"), "{path}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], code, "{path}: {v}");
    }
}
