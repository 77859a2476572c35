//! Small arithmetic helpers (a second module, picked up by the glob).

/// The n-th Fibonacci number, with fib(0) = 0 and fib(1) = 1.
pub fn fib(n: u32) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        let next = a + b;
        a = b;
        b = next;
    }
    a
}

/// The n-th triangular number: 1 + 2 + ... + n.
pub fn triangle(n: u32) -> u64 {
    let n = u64::from(n);
    n * (n + 1) / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fib_small() {
        let got: Vec<u64> = (0..8).map(fib).collect();
        assert_eq!(got, vec![0, 1, 1, 2, 3, 5, 8, 13]);
    }

    #[test]
    fn triangle_small() {
        assert_eq!(triangle(0), 0);
        assert_eq!(triangle(1), 1);
        assert_eq!(triangle(10), 55);
    }
}
