//! A target's service level objective, `slo: 99.9%` in the targets file: the share of results
//! that must not fail. Degraded results do not spend the budget (they answered); the budget
//! each uptime window has left is in `/api/status` and on the page.

use serde_norway::Value;

/// An SLO as a percentage in (0, 100), kept as written (99.9, not 0.99900000001).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slo(f64);

// === impl Slo ===

impl Slo {
    /// Parses `99.9%` (or the number `99.9`): a percentage above 0 and below 100.
    pub fn parse(value: &Value) -> Result<Self, String> {
        let percent = match value {
            Value::String(s) => s
                .trim()
                .strip_suffix('%')
                .unwrap_or(s.trim())
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("{s:?} is not a percentage; write e.g. 99.9%"))?,
            Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
            other => return Err(format!("{other:?} is not a percentage; write e.g. 99.9%")),
        };
        if !(percent > 0.0 && percent < 100.0) {
            return Err(format!(
                "{percent} must be above 0% and below 100% (100% leaves no error budget)"
            ));
        }
        Ok(Self(percent))
    }

    /// The share of results that must not fail, e.g. 0.999.
    pub fn ratio(self) -> f64 {
        self.0 / 100.0
    }

    /// As a percentage, e.g. 99.9.
    pub fn percent(self) -> f64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_percentages_and_rejects_the_rest() {
        let p = |s: &str| Slo::parse(&serde_norway::from_str::<Value>(s).unwrap());
        assert_eq!(p("99.9%").unwrap().percent(), 99.9);
        assert_eq!(p("'99.5 %'").unwrap().percent(), 99.5);
        assert_eq!(p("99").unwrap().ratio(), 0.99);
        for bad in ["100%", "0%", "-1", "abc", "[1]", "101"] {
            assert!(p(bad).is_err(), "{bad}");
        }
        assert!(p("100%").unwrap_err().contains("below 100%"));
    }

    #[test]
    fn a_bad_slo_in_the_file_names_file_target_and_field() {
        let e = crate::config::parse_targets(
            "targets.yaml",
            "defaults: {slo: 100%}\ntargets: [{name: api, url: 'http://a/'}]",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "targets.yaml: target \"api\": field \"slo\": 100 must be above 0% and below 100% (100% leaves no error budget)"
        );
        let ok = crate::config::parse_targets(
            "t",
            "defaults: {slo: 99%}\ntargets: [{name: a, url: 'http://a/', slo: 99.95%}, {name: b, url: 'http://b/'}]",
        )
        .unwrap();
        assert_eq!(ok[0].slo.map(Slo::percent), Some(99.95));
        assert_eq!(ok[1].slo.map(Slo::percent), Some(99.0));
    }
}
