//! What the binary needs around clap: a flag group's defaults read from its own declarations
//! (so they are written once), refusals as one line, and the reference as Markdown.

pub mod reference;
pub mod usage;

use clap::{Args, FromArgMatches};

/// `T`'s flags at their defaults, as parsed from no arguments with the environment ignored:
/// in `up`, FERROSTACK_PORT and the like must not leak into every role at once, and a test
/// must not depend on the shell it runs in.
pub fn defaults<T: Args + FromArgMatches>() -> Result<T, clap::Error> {
    let command = T::augment_args(clap::Command::new("defaults")).mut_args(|a| a.env(None::<&str>));
    let matches = command.try_get_matches_from(["defaults"])?;
    T::from_arg_matches(&matches)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::faults::FaultArgs;
    use crate::http::ServerArgs;

    #[test]
    fn defaults_are_the_flags_defaults() {
        let server: ServerArgs = super::defaults().unwrap();
        assert_eq!(server.host.to_string(), "0.0.0.0");
        assert_eq!(server.drain_delay, Duration::from_secs(5));
        assert_eq!(server.max_body_bytes, 1024 * 1024);
        let faults: FaultArgs = super::defaults().unwrap();
        assert_eq!(faults.random_delay_max, Duration::from_millis(500));
        assert!(!faults.fault_injection);
    }
}
