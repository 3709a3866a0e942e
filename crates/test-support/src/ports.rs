//! Free loopback ports: one, or a contiguous range (for `ferrostack up`'s roles).

use std::net::TcpListener;

/// A free loopback port (bound then released; the server under test binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a loopback port")
        .local_addr()
        .expect("local address")
        .port()
}

/// The first of `n` consecutive free loopback ports.
pub fn free_port_range(n: u16) -> u16 {
    (0..200)
        .map(|_| free_port())
        .find(|&base| range_is_free(base, n))
        .unwrap_or_else(|| panic!("no free range of {n} ports"))
}

/// Whether each of the `n` ports from `base` can be bound on loopback now.
fn range_is_free(base: u16, n: u16) -> bool {
    base.checked_add(n).is_some()
        && (0..n).all(|offset| TcpListener::bind(("127.0.0.1", base + offset)).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_bindable_port_by_port() {
        let base = free_port_range(5);
        for offset in 0..5 {
            TcpListener::bind(("127.0.0.1", base + offset)).expect("free");
        }
    }

    #[test]
    fn a_range_with_a_port_in_use_is_not_free() {
        let held = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = held.local_addr().expect("address").port();
        assert!(!range_is_free(port, 1));
        assert!(!range_is_free(port - 2, 3), "the last of three in use");
        assert!(!range_is_free(u16::MAX, 2), "past the last port");
    }
}
