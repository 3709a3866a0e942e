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
    'search: for _ in 0..200 {
        let base = free_port();
        if base.checked_add(n).is_none() {
            continue;
        }
        for offset in 0..n {
            if TcpListener::bind(("127.0.0.1", base + offset)).is_err() {
                continue 'search;
            }
        }
        return base;
    }
    panic!("no free range of {n} ports");
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
}
