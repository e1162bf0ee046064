//! `picket-lb` binary: load and validate the configuration before binding any
//! port (exit 64 on bad configuration), then run until SIGTERM (graceful, within
//! the grace period) or SIGINT (fast).

use picket_lb::config::LbConfig;
use picket_shared::config::{EXIT_CONFIG, parse_or_exit};
use pingora::server::UnixShutdownSignalWatch;

/// The request path allocates and frees a few buffers per request; mimalloc's
/// thread-local free lists cost less than glibc's arenas there (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cfg: LbConfig = parse_or_exit();
    picket_shared::telemetry::init(cfg.log_format);
    if let Err(e) = cfg.validate() {
        eprintln!("configuration error:\n{e}");
        std::process::exit(EXIT_CONFIG);
    }
    picket_lb::run(cfg, Box::new(UnixShutdownSignalWatch));
}
