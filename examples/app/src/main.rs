//! Example binary.
//!
//! Usage: app [--count N] [--name NAME] [ARG...]
//!
//! Prints a banner, a greeting, the library chain, N decorated Fibonacci
//! lines (default 3), the diamond summary, some derived descriptions, and
//! finally echoes the remaining positional arguments.

use std::process::ExitCode;

use describe::Describe;

struct Options {
    count: u32,
    name: String,
    rest: Vec<String>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        count: 3,
        name: "world".to_string(),
        rest: Vec::new(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--count" => {
                let value = args.next().ok_or("--count needs a value")?;
                options.count = value
                    .parse()
                    .map_err(|_| format!("--count: not a number: {:?}", value))?;
            }
            "--name" => {
                options.name = args.next().ok_or("--name needs a value")?;
            }
            _ => options.rest.push(arg),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("app: {}", message);
            eprintln!("usage: app [--count N] [--name NAME] [ARG...]");
            return ExitCode::from(2);
        }
    };

    for line in chain_c::banner() {
        println!("{}", line);
    }
    println!("{}", chain_c::greet(&options.name));
    println!("chain: {}", chain_c::chain());
    println!("style: {}", chain_c::style());
    for line in chain_c::fib_lines(options.count) {
        println!("{}", line);
    }
    println!("diamond: {}", summit::summary());

    let (point, rect, label, origin) = shapes::samples();
    let items: [&dyn Describe; 4] = [&point, &rect, &label, &origin];
    for item in items {
        println!("shape {}", describe::render(item));
    }
    println!("rect area: {}", rect.area());

    println!("args: {}", options.rest.len());
    for (index, arg) in options.rest.iter().enumerate() {
        println!("  [{}] {}", index, arg);
    }
    ExitCode::SUCCESS
}
