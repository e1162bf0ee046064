//! `picket-node` binary.

fn main() -> std::process::ExitCode {
    picket_node::cli::main(std::env::args_os().collect())
}
