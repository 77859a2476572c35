//! Integration test: several libraries used together, from outside.

use derive_describe::Describe;
use describe::Describe as _;

#[derive(Describe)]
struct Probe {
    name: &'static str,
    sizes: Vec<(u8, u8)>,
    callback: Option<fn(u8) -> u8>,
}

#[test]
fn chain_matches_data_file() {
    let expected = test_util::read_data("tests/testdata/expected_chain.txt");
    assert_eq!(chain_c::chain(), expected);
}

#[test]
fn greeting_comes_from_rustc_env() {
    assert_eq!(chain_c::greet("tests"), "Howdy, tests!");
}

#[test]
fn diamond_total_matches_env() {
    let expected: u32 = std::env::var("EXPECTED_TOTAL")
        .expect("EXPECTED_TOTAL is set by the rust_test env attribute")
        .parse()
        .expect("EXPECTED_TOTAL is a number");
    assert_eq!(top::total(), expected);
}

#[test]
fn fib_lines_are_decorated_consistently() {
    let lines = chain_c::fib_lines(5);
    assert_eq!(lines.len(), 5);
    assert!(lines[4].contains("fib(5) = 5"), "got {:?}", lines[4]);
    if chain_c::style() == "fancy" {
        assert!(lines.iter().all(|line| line.starts_with("*** ")));
    }
}

#[test]
fn derive_works_in_a_test_crate() {
    let probe = Probe {
        name: "probe",
        sizes: vec![(1, 2)],
        callback: None,
    };
    assert_eq!(
        probe.describe(),
        "Probe { name: \"probe\", sizes: [(1, 2)], callback: None }"
    );
    assert_eq!(probe.type_label(), "Probe");
    assert_eq!(describe::render(&shapes::Origin), "Origin: Origin");
}
